"""The generated code committed under clients/ is exactly what proto/generate.py makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
# The generated proto packages (nlr/auth/v1, nlr/registry/v1); the wrappers beside them are
# written by hand.
GENERATED_TREES = "clients/*/src/nlr/*/v[0-9]*"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nlr_proto_generate", ROOT / "proto/generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_files(root: Path) -> dict[str, bytes]:
    """Every file in the client packages' generated trees, by path relative to root."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for tree in root.glob(GENERATED_TREES)
        for path in sorted(tree.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_regenerating_from_proto_gives_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    written = load_generator().generate(tmp_path)

    regenerated = generated_files(tmp_path)
    committed = generated_files(ROOT)

    assert len(written) == len(regenerated) > 0
    assert sorted(committed) == sorted(regenerated), "a generated file is missing or extra"
    differing = [name for name in regenerated if regenerated[name] != committed[name]]
    assert differing == [], "run `make proto` and commit the result"
