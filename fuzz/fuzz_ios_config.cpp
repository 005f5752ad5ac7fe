// The IOS configuration parser on whole files (parse_ios_config): never a crash, and every
// error names a line of the input (or none, 0) and says what was expected. Seeds: configs/ and
// tests/data/timers (show running-config captures); dictionary fuzz/dict/ios.dict.
#include <cstdint>
#include <string_view>

#include "pkisim/timers/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    auto r = pkisim::timers::parse_ios_config(text, "fuzz.ios");
    if (!r) {
        // "file:line: what was expected": the line exists in the input (or is one past it).
        std::size_t lines = 1;
        for (const char c : text)
            lines += c == '\n' || c == '\r' ? 1 : 0;  // the parser also ends a line at a CR
        const int line = r.error().where.line;
        if (line < 0 || static_cast<std::size_t>(line) > lines + 1 || r.error().message.empty())
            __builtin_trap();
    }
    return 0;
}
