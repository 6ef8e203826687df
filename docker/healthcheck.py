"""Container health check: GET a path of the web server inside this container.

    python docker/healthcheck.py /healthz

Exit 0 on HTTP 200, 1 otherwise. The request carries the first ALLOWED_HOSTS entry as its
Host header, so Django's host check accepts it whatever the deployment's host names are.
Standard library only: it runs in well under a second and imports nothing of Django.
"""

import http.client
import os
import sys


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    port = int(os.environ.get("WEB_PORT", "8000"))
    hosts = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost").split(",")]
    host = next((h.lstrip(".") for h in hosts if h and h != "*"), "localhost")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        conn.request("GET", path, headers={"Host": host})
        status = conn.getresponse().status
    except OSError as err:
        print(f"healthcheck: {path}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    if status != 200:
        print(f"healthcheck: {path}: HTTP {status}", file=sys.stderr)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
