// One IOS command, as `--set`, sweeps and the parser apply it: apply_server_command and
// apply_trustpoint_command on a default section, and the same line inside a server and a
// trustpoint section of a file. Dictionary fuzz/dict/ios.dict.
#include <cstdint>
#include <string>
#include <string_view>

#include "pkisim/timers/config.hpp"

using namespace pkisim::timers;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view line{reinterpret_cast<const char*>(data), size};
    if (line.find('\n') != std::string_view::npos || line.find('\r') != std::string_view::npos)
        return 0;  // one command
    const source_location where{"--set", 0, 0};
    server_config server;
    (void)apply_server_command(server, line, where);
    trustpoint_config tp;
    (void)apply_trustpoint_command(tp, line, where);
    // The same command inside a `crypto pki server` and a trustpoint section of a file.
    (void)parse_ios_config("crypto pki server fuzz\n " + std::string{line} + "\n", "fuzz.ios");
    (void)parse_ios_config("crypto pki trustpoint fuzz\n " + std::string{line} + "\n", "fuzz.ios");
    return 0;
}
