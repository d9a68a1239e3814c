// Printable (one line, no terminal escapes, valid UTF-8) and JsonQuote (valid JSON from any
// bytes), with python3's json module as the oracle for the JSON.
#include <catch2/catch.hpp>

#include <string>

#include "common/json.hpp"
#include "common/text.hpp"
#include "support/support.hpp"

TEST_CASE("Printable escapes controls, C1, bidi overrides and bytes that are not UTF-8") {
  CHECK(osu::Printable("vmlinuz-6.1 ü €") == "vmlinuz-6.1 ü €");
  CHECK(osu::Printable("a\nb\rc\td") == "a\\nb\\rc\\td");
  CHECK(osu::Printable("\x1b[2J\x07\x7f") == "\\x1b[2J\\x07\\x7f");
  CHECK(osu::Printable("\xc2\x9b" "31m") == "\\u009b31m");  // C1 CSI, as UTF-8
  CHECK(osu::Printable("\xe2\x80\xae" "evil\xe2\x80\xa8") == "\\u202eevil\\u2028");
  CHECK(osu::Printable("k\xff\xc3") == "k\\xff\\xc3");       // invalid, and cut short
  CHECK(osu::Printable("\xc0\xaf") == "\\xc0\\xaf");          // overlong '/'
  CHECK(osu::Printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate
  CHECK(osu::Printable(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(osu::Printable("back\\slash") == "back\\slash");
  for (const std::string s : {"a\n\x1b[2J\xff\xc2\x85", "plain", "\\x1b"})
    CHECK(osu::Printable(osu::Printable(s)) == osu::Printable(s));
  CHECK(osu::InQuotes("a\nb") == "'a\\nb'");
}

TEST_CASE("JsonQuote: any bytes give a JSON string python's json module reads") {
  osu::test::RequireTool("python3");
  const std::string hostile = std::string("n\"a\\m\ne\x1b[2J\xff\xfe\xc2\x85\xe2\x80\xa8ok\0z", 22);
  const std::string line =
      osu::Json::MakeObject().Set("event", "error").Set(hostile, hostile).Dump();
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find('\x1b') == std::string::npos);
  // The oracle decodes it strictly (valid UTF-8 required) and prints what it read.
  osu::test::TempDir dir;
  osu::test::WriteFile(dir / "line.json", line);
  const std::string read = osu::test::MustRun(
      "python3 -c 'import json,sys; v=json.loads(open(sys.argv[1],\"rb\").read().decode(\"utf-8\"));"
      " print(ascii(v))' " + dir / "line.json");
  CHECK(read ==
        "{'event': 'error', 'n\"a\\\\m\\ne\\x1b[2J\\ufffd\\ufffd\\x85\\u2028ok\\x00z': "
        "'n\"a\\\\m\\ne\\x1b[2J\\ufffd\\ufffd\\x85\\u2028ok\\x00z'}\n");
}
