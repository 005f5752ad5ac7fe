// The simulator's scenario parser (TOML + the IOS files it names, resolved under configs/).
// Seeds: configs/*.toml; dictionary fuzz/dict/scenario.dict.
#include <cstdint>
#include <string_view>

#include "pkisim/sim/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    auto r = pkisim::sim::parse_scenario(text, "fuzz.toml", PKISIM_SOURCE_DIR "/configs");
    if (!r && r.error().empty())
        __builtin_trap();  // an error must say what was expected
    return 0;
}
