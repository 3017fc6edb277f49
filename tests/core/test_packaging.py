"""A plain (non-editable) install holds every package of the checkout: setup.cfg
lists packages by hand (plugins/ is installed as mlflow_hokusai.plugins), and a
package missing from the list is missing only outside an editable install."""

import configparser
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _listed_and_mapped():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    options = config["options"]
    listed = set(options["packages"].split())
    mapped = dict(line.split(" = ") for line in options["package_dir"].strip().splitlines())
    return listed, mapped


def test_every_package_of_the_checkout_is_installed():
    listed, mapped = _listed_and_mapped()
    found = set()
    for package, folder in mapped.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            name = ".".join((package, *relative))
            # mlflow_hokusai/ maps only its own folder; plugins/ is another mapping.
            if not any(name.startswith(other + ".") or name == other
                       for other in mapped if other != package and other.startswith(package)):
                found.add(name)
    assert "mlflow_hokusai.plugins.auth" in found and "mlflow_hokusai.db.migrations" in found
    assert found - listed == set(), "add them to setup.cfg [options] packages"
    assert listed - found == set(), "setup.cfg lists packages the checkout does not have"


def test_make_serve_installs_what_serving_needs_only(tmp_path):
    # `make test` installs the extras, so a server depending on one would pass
    # every test yet fail for someone who only runs `make serve`.
    venv = tmp_path / "venv"
    # --no-print-directory: under `make test` this make is nested and would add
    # "Entering/Leaving directory" lines.
    plan = subprocess.run(["make", "--no-print-directory", "-n", "serve", f"VENV={venv}"],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout
    installs = [line for line in plan.splitlines() if " install " in line]
    uv = f"{venv}/bin/uv pip install --compile-bytecode --python {venv}/bin/python"
    assert f"{uv} -e ." in installs, plan
    assert not any("[" in line for line in installs), installs
    assert plan.splitlines()[-1].startswith(f"{venv}/bin/hokusai serve "), plan
