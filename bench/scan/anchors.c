/* anchors.c — prints the anchor pattern of every built-in scan rule, one a
 * line, so ripgrep can be timed searching exactly what keyward's Hyperscan
 * database searches (bench/scan/speed_compare.py, git_speed.py).  A rule
 * found natively (the generic assignment rule) prints the regex its finder
 * implements.  Rules are read through the library's internal table. */
#include <stdio.h>

#include "keyward/scan.h"
#include "scan/scan_internal.h"

int main(void)
{
    kw_scan_rules *rules = NULL;
    if (kw_scan_rules_new(&rules) != 0) return 1;
    for (size_t i = 0; i < rules->count; i++) printf("%s\n", rules->items[i].pattern);
    kw_scan_rules_free(rules);
    return 0;
}
