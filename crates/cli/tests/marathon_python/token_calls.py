"""marathon-python against a drover whose masters check ACL tokens.

Run by crates/cli/tests/marathon_python.rs: DROVER_URL names a secure master (https), and
REQUESTS_CA_BUNDLE its cluster CA, which requests verifies the master against; DROVER_TOKEN
is a management token's secret. marathon-python's `auth_token=` sends DC/OS's
`Authorization: token=…`. Prints OK when every check passed; raises otherwise.
"""

import collections
import collections.abc
import os

if not hasattr(collections, "Iterable"):
    collections.Iterable = collections.abc.Iterable

from marathon import MarathonClient, MarathonHttpError
from marathon.models import MarathonApp

URL = os.environ["DROVER_URL"]
TOKEN = os.environ["DROVER_TOKEN"]

assert URL.startswith("https://"), URL
anonymous = MarathonClient(URL)
try:
    anonymous.list_apps()
    raise SystemExit("list_apps without a token was answered, not refused")
except MarathonHttpError as e:
    assert e.status_code == 401, f"without a token: {e.status_code} {e}"
    print("--- without a token: 401", flush=True)

client = MarathonClient(URL, auth_token=TOKEN)
app = client.create_app("/mp-token/web", MarathonApp(cmd="sleep 1000", cpus=0.01, mem=8, instances=0))
assert app.id == "/mp-token/web", app.id
print("--- create_app with auth_token", flush=True)
ids = [a.id for a in client.list_apps()]
assert "/mp-token/web" in ids, ids
print("--- list_apps with auth_token", flush=True)
client.delete_app("/mp-token/web", force=True)
print("--- delete_app with auth_token", flush=True)
print("OK", flush=True)
