"""Generates the Python messages, gRPC stubs and type stubs from proto/ into the client packages.

Run as `make proto`. With `--out DIR` it writes the same tree under DIR instead, which the test
suite uses to check that the committed code matches the .proto files.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"

# Each proto package goes to the client package that publishes it: the auth-only client must
# carry no registry code.
PACKAGES: dict[str, str] = {
    "nlr/auth/v1": "clients/nlr-auth-client/src",
    "nlr/registry/v1": "clients/nlr-client/src",
    # The portal's API; it uses the registry's messages, so it goes with them.
    "nlr/selfservice/v1": "clients/nlr-client/src",
}


def _plugin(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit(f"{name} not found next to {sys.executable}: install the dev extras")
    return found


def generate(out_root: Path) -> list[Path]:
    """Writes the generated files for every package under out_root; returns their paths."""
    include = str(Path(protoc.__file__).parent / "_proto")
    written: list[Path] = []
    for package, target in PACKAGES.items():
        out = out_root / target
        out.mkdir(parents=True, exist_ok=True)
        sources = sorted(
            str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / package).glob("*.proto")
        )
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
            f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_out={out}",
            f"--mypy_grpc_out={out}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed for {package}")
        package_dir = out / package
        (package_dir / "py.typed").touch()
        written.extend(sorted(p for p in package_dir.iterdir() if p.is_file()))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT, help="root to write under")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path.relative_to(args.out))


if __name__ == "__main__":
    main()
