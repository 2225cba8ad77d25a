"""The package as installed: type stubs and py.typed ship, and the stubs name exactly what the
module exports, with the documented signatures."""

import ast
import inspect
import pathlib

import cyborgdb_core as cyborgdb

PACKAGE = pathlib.Path(cyborgdb.__file__).parent


def stub_tree():
    return ast.parse((PACKAGE / "__init__.pyi").read_text())


def test_wheel_ships_stubs_and_py_typed():
    assert (PACKAGE / "py.typed").exists() and (PACKAGE / "__init__.pyi").exists()


def test_stubs_cover_every_public_name():
    tree = stub_tree()
    stubbed = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            stubbed.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stubbed.add(node.target.id)
    public = {n for n in dir(cyborgdb) if not n.startswith("_")} | {"__version__"}
    public -= {"annotations"}
    assert public - stubbed == set()
    assert {n for n in stubbed if not n.startswith("_")} - public == set()
    assert set(cyborgdb.__all__) <= public and "IOError" not in cyborgdb.__all__


def test_stub_methods_exist_on_the_classes():
    for node in stub_tree().body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(cyborgdb, node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    assert hasattr(cls, item.name), f"{node.name}.{item.name}"


def test_documented_signatures():
    for fn in (cyborgdb.create_index_kms, cyborgdb.push_index_kms):
        assert str(inspect.signature(fn)) == "(config_location, index_name, blob)"
    for fn in (cyborgdb.get_index_kms, cyborgdb.delete_index_kms):
        assert str(inspect.signature(fn)) == "(config_location, index_name)"
    assert str(inspect.signature(cyborgdb.list_index_kms)) == "(config_location)"


def test_classes_are_in_the_package_namespace():
    for name in ("StorageConfig", "KMSBlob", "KEK", "KMSClient", "KEKResolver", "NotFoundError"):
        assert getattr(cyborgdb, name).__module__ == "cyborgdb_core"
