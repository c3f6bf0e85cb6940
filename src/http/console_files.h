/* console_files.h — the web console's files, embedded at build time.
 * cmake/embed.cmake generates the table from src/http/console/; the
 * program serves it from memory (h_console_files.c). */
#ifndef KW_CONSOLE_FILES_H
#define KW_CONSOLE_FILES_H

typedef struct kw_console_file {
    const char *name;  /* file name in src/http/console/ */
    const unsigned char *data;
    unsigned long size;
} kw_console_file;

extern const kw_console_file kw_console_files[];
extern const unsigned kw_console_file_count;

#endif
