"""Settings for the demo app (fake credentials)."""
POSTHOG_PERSONAL_API_KEY = "phx_bwS7xJ4o9G7fQFFsPR0KKrPa6Ew0nBH3dICYpfTUxQ3vAikL2oMttj"
PROJECT_SECRET = 'phs_InT6WIf0Aomn6xoWqIU1dFN2mglzPRfsX2iAtszA2RPxLz4B1i5yZj'
posthog.init('phc_ssOpY9Qx90DQQKcmOLvSl5YlDV0JT7KM0xOJ9QOwdTvTye3V2fUVLV')
LEGACY_KEY = "phx_RstuXgC0vwdC6OICHf8iTlv5PGcNwNcJyIN7BEhtmK0"
OLD_TOKEN = "phc_1m6BsimwjHfAwTZ3Ru8tUxe9DN0WP8K3uFmMgLZr8FLY8Og"
# decoys below: none of these is a secret
TYPO_KEY = "phx_wUAPobxmJ6qWW58T0cnm1GTL2fRCxojX4nAADDVxIGWT5UOh4BqkmA"
DOC_KEY = "phx_your_personal_api_key_here"
FILLER = "phc_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
MASKED = "phx_...a1B2"
SHORT = "phs_abc123"
TOO_LONG = "phx_xAwG0Oaw8vFcJH7pYTTTOnPmVHSkDmhrmhKlB010wt3YSA2GVIB5mjuKXjgn"
def phx_token_lookup_helper(): pass
ALLOWED = "phs_GNCrfQxpRVy8vhzIibyqujWnTikj9POCWaB1OXJtEXQqWg283zxpSu"  # keyward:allow (rotated test key)
