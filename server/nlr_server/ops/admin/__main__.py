"""`python -m nlr_server.ops.admin` runs `nlr-admin`."""

from nlr_server.ops.admin import main

if __name__ == "__main__":
    main()
