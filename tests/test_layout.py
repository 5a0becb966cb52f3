"""The layout of the tree: the licence boundary of the README (nothing in the addon or the
bridge imports gurux), and one file per model in the addon (CONVENTIONS.md)."""

import ast
import collections
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_addon_and_bridge_do_not_import_gurux_or_meter_sim():
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("smartpm_prepay", "meter_bridge")
        for path in (ROOT / folder).rglob("*.py")
        if any(
            word in path.read_text()
            for word in ("import gurux", "from gurux", "import meter_sim", "from meter_sim")
        )
    ]
    assert offenders == []


# ------------------------------------------------------------------ one file per model
ADDON = ROOT / "smartpm_prepay"
MODEL_FOLDERS = ("models", "wizards")


def _strings(node):
    """The string(s) of an ``_name`` / ``_inherit`` value: a str or a list/tuple of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant)]
    return []


def models_of_file(path):
    """The models a file defines (``_name``) or extends (``_inherit`` of another model, or
    ``_name`` equal to one of its ``_inherit``): ``{model: class name}``."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.ClassDef):
            continue
        attrs = {}
        for item in node.body:
            if isinstance(item, ast.Assign) and len(item.targets) == 1:
                target = item.targets[0]
                if isinstance(target, ast.Name) and target.id in ("_name", "_inherit"):
                    attrs[target.id] = _strings(item.value)
        names = attrs.get("_name") or []
        inherits = attrs.get("_inherit") or []
        # a new model named after its mixins is defined, not extended: _name, else _inherit
        for model in names or inherits:
            found.setdefault(model, node.name)
    return found


def split_models(root=ADDON, folders=MODEL_FOLDERS):
    """Models defined or extended in more than one file: ``{model: [files]}``."""
    files = collections.defaultdict(list)
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            for model in models_of_file(path):
                files[model].append(str(path.relative_to(root)))
    return {model: paths for model, paths in files.items() if len(paths) > 1}


def test_each_model_is_defined_or_extended_in_one_file():
    split = split_models()
    assert not split, "\n".join(
        f"{model} is defined or extended in {len(paths)} files: {', '.join(paths)}"
        for model, paths in sorted(split.items())
    )


def test_layout_check_finds_a_model_split_over_two_files(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "meter.py").write_text(
        'class M(models.Model):\n    _name = "x.meter"\n    _inherit = ["mail.thread"]\n'
    )
    (tmp_path / "models" / "meter_sale.py").write_text(
        'class M(models.Model):\n    _name = "x.meter"\n'
        '    _inherit = ["x.meter", "pos.load.mixin"]\n'
    )
    (tmp_path / "models" / "partner.py").write_text(
        'class P(models.Model):\n    _inherit = "res.partner"\n'
    )
    assert split_models(tmp_path, ("models",)) == {
        "x.meter": ["models/meter.py", "models/meter_sale.py"]
    }
