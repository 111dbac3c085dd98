"""The chaos suite reuses the integration suite's fixtures (the real binary, real receivers)."""
import importlib.util
import os
import sys

_path = os.path.join(os.path.dirname(__file__), "..", "integration", "conftest.py")
sys.path.insert(0, os.path.dirname(_path))
_spec = importlib.util.spec_from_file_location("hk_integration_conftest", _path)
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)

hookd = _mod.hookd
Hookd = _mod.Hookd
Receiver = _mod.Receiver
wait_until = _mod.wait_until
SLOW = _mod.SLOW
HOOKD_BIN = _mod.HOOKD_BIN
free_port = _mod.free_port
run_hookd = _mod.run_hookd
check_no_sanitizer_report = _mod.check_no_sanitizer_report
SANITIZER_VARS = _mod.SANITIZER_VARS
for _name in dir(_mod):  # every other fixture (pg_server, redis, ...) as well
    _obj = getattr(_mod, _name)
    if hasattr(_obj, "_pytestfixturefunction") or type(_obj).__name__ == "FixtureFunctionDefinition":
        globals().setdefault(_name, _obj)
