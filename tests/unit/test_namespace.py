"""Installed, Interchange is one namespace: a user's own ``contracts`` or ``adapters`` package
never collides with ours."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_project_with_its_own_contracts_and_adapters_packages_imports_both(tmp_path):
    for package in ("contracts", "adapters", "integrations"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"OWNER = 'the user project: {package}'\n")
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            import contracts, adapters, integrations
            from interchange import Bus, Command, Event
            from interchange.adapters import TransportMessage
            from interchange.contracts import Codec

            class PlaceOrder(Command, name="user.place_order", version=1):
                order_id: str

            seen = []
            bus = Bus.from_config({"backends": {"commands": "memory://ns", "events": "memory://ns"}})
            bus.handles(PlaceOrder)(lambda cmd, ctx: seen.append(cmd.order_id))
            with bus:
                bus.send(PlaceOrder(order_id="A-1"))
                import time
                deadline = time.monotonic() + 10
                while not seen and time.monotonic() < deadline:
                    time.sleep(0.01)
            bus.close()
            print(contracts.OWNER, adapters.OWNER, integrations.OWNER, seen, sep="|")
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split("|") == [
        "the user project: contracts",
        "the user project: adapters",
        "the user project: integrations",
        "['A-1']",
    ]


def test_the_repository_folders_are_not_installed_as_top_level_packages(tmp_path):
    probe = "import importlib.util as u; print([u.find_spec(n) is None for n in "
    probe += "('contracts', 'adapters', 'integrations')])"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "[True, True, True]", done.stderr
