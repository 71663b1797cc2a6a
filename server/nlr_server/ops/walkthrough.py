"""The grpcurl commands `make run` prints and the README shows; a test runs them as pasted."""

from __future__ import annotations

from nlr_server.ops import demo_data

ADDRESS = "127.0.0.1:50051"


def grpcurl_commands(
    pki_dir: str = ".nlr-dev/pki", grpcurl: str = ".venv/bin/grpcurl"
) -> list[str]:
    """List services, check health, get a demo borrower as its own library and as another one,
    and read the first changes of the own library's change feed."""
    tls = f"{grpcurl} -cacert {pki_dir}/ca.pem -cert {pki_dir}/ils.pem -key {pki_dir}/ils.key"
    kari = demo_data.DEMO_BORROWERS[0]
    get = f'-d \'{{"card_number": "{kari.card_number}"}}\''
    method = "nlr.registry.v1.BorrowerRegistry/GetBorrower"
    acting = [
        f"-H 'nlr-library-number: {library.number}' "
        f"-H 'nlr-library-code: {demo_data.LIBRARY_CODES[library.number]}'"
        for library in (demo_data.OSLO, demo_data.BERGEN)
    ]
    return [
        f"{tls} {ADDRESS} list",
        f"{tls} {ADDRESS} grpc.health.v1.Health/Check",
        *(f"{tls} {headers} {get} {ADDRESS} {method}" for headers in acting),
        f'{tls} {acting[0]} -d \'{{"after": 0, "page_size": 2}}\' {ADDRESS} '
        "nlr.registry.v1.BorrowerRegistry/ListChanges",
    ]
