"""Every JSON text from a device or the platform is read with tbgw_json_loadb, and every JSON text
tbgw writes from a jansson tree goes through tbgw_json_dumps / tbgw_buf_json (src/util/json.h):
jansson's own json_loads refuses integers beyond int64 and json_dumps writes doubles with 17 digits
and number nodes as strings. This test keeps new code on that rule (docs/ARCHITECTURE.md, Numbers)."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tbgwtest import SOURCE_DIR  # noqa: E402

# Files allowed to call jansson's reader/writer directly, and why.
ALLOWED = {
    "src/util/json.c": "the gateway's reader and writer themselves",
    "src/util/doc.c": "configuration documents (line/column positions), not device data",
    "src/platform/provision.c": "provisioning credentials (strings only)",
    "src/doctor/doctor.c": "the doctor's report (strings only)",
}
CALL = re.compile(r"(?<![A-Za-z0-9_])json_(dumps|dumpb|dumpf|loads|loadb|loadf)\s*\(")


class JsonHygiene(unittest.TestCase):
    def test_no_direct_jansson_text_io(self):
        bad = []
        for root, _, files in os.walk(os.path.join(SOURCE_DIR, "src")):
            for name in files:
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(root, name)
                rel = os.path.relpath(path, SOURCE_DIR)
                if rel in ALLOWED:
                    continue
                with open(path, encoding="utf-8", errors="replace") as f:
                    for no, line in enumerate(f, 1):
                        code = line.split("//")[0]
                        if CALL.search(code) and not code.lstrip().startswith(("*", "/*")):
                            bad.append("%s:%d: %s" % (rel, no, line.strip()))
        self.assertEqual(bad, [], "use tbgw_json_loadb/tbgw_json_loads and tbgw_json_dumps/tbgw_buf_json "
                                  "(src/util/json.h) instead:\n" + "\n".join(bad))


if __name__ == "__main__":
    unittest.main(verbosity=2)
