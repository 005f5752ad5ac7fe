// `--set key=value` and sweep values (apply_setting) on the seed002 scenario, and
// parse_duration_text. Input: "key=value" (the first '=' splits). Seeds: fuzz/corpus/set;
// dictionary fuzz/dict/scenario.dict.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pkisim/sim/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const pkisim::sim::scenario base = [] {
        auto sc = pkisim::sim::load_scenario(PKISIM_SOURCE_DIR "/configs/seed002.toml");
        if (!sc)
            std::abort();
        return *sc;
    }();
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    const auto eq = text.find('=');
    (void)pkisim::sim::parse_duration_text(text);
    if (eq == std::string_view::npos)
        return 0;
    auto sc = base;
    auto r = pkisim::sim::apply_setting(sc, text.substr(0, eq), text.substr(eq + 1));
    if (!r && r.error().empty())
        __builtin_trap();
    return 0;
}
