"""The configs the benchmarks write are configs edgesim loads, with the functions meant.

bench/ is not a package: its scripts are loaded from their files, as
``python bench/peers.py`` runs them. Nothing is measured here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from edgesim.config import load_config

BENCH = Path(__file__).resolve().parent.parent / "bench"


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)  # peers.py puts bench/ on sys.path for run.py
    finally:
        sys.path[:] = path
    return module


def test_the_peers_cloudfront_function_case_uses_the_real_schema(tmp_path: Path) -> None:
    peers = script("peers")
    path = tmp_path / "edge.yaml"
    peers.cff_config(path, 9000, 9001, 9002, tmp_path)
    config = load_config(path)
    noop = config.functions["noop"]
    assert noop.is_cloudfront_function and noop.runtime == "cloudfront-js-2.0"
    assert noop.code.is_file() and "function handler(event)" in noop.code.read_text()
    associations = dict(config.default_behavior.functions)
    assert associations["viewer-request"].function == "noop"


def test_the_lambda_edge_case_loads_too(tmp_path: Path) -> None:
    run = script("run")
    path = tmp_path / "edge.yaml"
    run.edge_config(path, 9000, 9001, 9002, "CachingOptimized", True)
    config = load_config(path)
    assert config.functions["noop"].runtime == "python3.12"
    assert dict(config.default_behavior.functions)["viewer-request"].function == "noop"
