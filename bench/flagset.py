#!/usr/bin/env python3
"""bench/flagset.py — a realistic flag set for the flag benchmarks.

Creates N feature flags in a project over the admin API, shaped like the
flags of a real product rather than one 50 % rollout repeated: a quarter
plain rollouts, a quarter person-property targeting (exact, icontains,
regex, numeric gt, is_set) with rollouts, a quarter multivariate flags with
three variants and payloads, and a quarter multi-condition flags (an
internal-users condition with an override variant, then a rollout).  The
request body the bench sends carries the person properties those flags
read, so evaluation runs every kind of match.

usage: bench/flagset.py BASE_URL PHX_KEY PROJECT_ID N
"""
import json
import sys
import urllib.request

PERSON = {"email": "jane@acme.io", "plan": "enterprise", "country": "DE", "seats": 42,
          "signup_days": 120, "beta_opt_in": True}


def flag(i):
    kind = i % 4
    if kind == 0:
        filters = {"groups": [{"properties": [], "rollout_percentage": 10 + (i * 7) % 80}]}
    elif kind == 1:
        props = [
            [{"key": "email", "value": "@acme.io", "operator": "icontains", "type": "person"}],
            [{"key": "plan", "value": ["enterprise", "scale"], "operator": "exact", "type": "person"}],
            [{"key": "seats", "value": "10", "operator": "gt", "type": "person"}],
            [{"key": "country", "value": "^(DE|FR|NL)$", "operator": "regex", "type": "person"}],
            [{"key": "beta_opt_in", "operator": "is_set", "type": "person"}],
        ][i // 4 % 5]
        filters = {"groups": [{"properties": props, "rollout_percentage": 50 + i % 50}]}
    elif kind == 2:
        filters = {
            "groups": [{"properties": [], "rollout_percentage": 100}],
            "multivariate": {"variants": [
                {"key": "control", "rollout_percentage": 34},
                {"key": "test-a", "rollout_percentage": 33},
                {"key": "test-b", "rollout_percentage": 33}]},
            "payloads": {"control": json.dumps({"color": "blue"}),
                         "test-a": json.dumps({"color": "green", "size": i}),
                         "test-b": json.dumps({"color": "red", "items": [1, 2, 3]})},
        }
    else:
        filters = {
            "groups": [
                {"properties": [{"key": "email", "value": "@posthog.com", "operator": "icontains",
                                 "type": "person"}],
                 "rollout_percentage": 100, "variant": "internal"},
                {"properties": [{"key": "signup_days", "value": "30", "operator": "gt",
                                 "type": "person"}],
                 "rollout_percentage": 25 + i % 50},
            ],
            "multivariate": {"variants": [{"key": "internal", "rollout_percentage": 0},
                                          {"key": "public", "rollout_percentage": 100}]},
        }
    return {"key": "bench-flag-%03d" % i, "name": "Bench flag %d" % i, "filters": filters,
            "active": True}


def create(base, phx, project, n):
    for i in range(n):
        req = urllib.request.Request(
            "%s/api/projects/%s/feature_flags/" % (base, project),
            data=json.dumps(flag(i)).encode(), method="POST",
            headers={"Authorization": "Bearer " + phx, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()


def flags_body(token, distinct_id="user-42"):
    """The /flags request body: the token, a person and its properties."""
    return json.dumps({"token": token, "distinct_id": distinct_id, "person_properties": PERSON})


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    create(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
