// The small decoders on untrusted text: query percent-decoding, GET message= base64 (lenient),
// access-log escaping, DN parsing (issuer-name, CSR subjects) and ISO 8601 times. The first
// byte picks the decoder. Properties checked: base64 output is at most 3/4 of the input,
// percent_decode never grows the text, an escaped log field has no control or non-ASCII byte,
// and a parsed ISO 8601 time prints and parses back to itself.
#include <cstdint>
#include <string>
#include <string_view>

#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/server.hpp"
#include "pkisim/timers/time.hpp"

using namespace pkisim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::string_view text{reinterpret_cast<const char*>(data + 1), size - 1};
    switch (data[0] % 5) {
        case 0:
            if (scep::percent_decode(text).size() > text.size())
                __builtin_trap();
            break;
        case 1:
            if (auto b = scep::lenient_base64_decode(text);
                b && b->size() > text.size() * 3 / 4 + 1)
                __builtin_trap();
            break;
        case 2:
            for (const char c : scep::escape_log_field(text, (data[0] & 0x80) != 0)) {
                const auto u = static_cast<unsigned char>(c);
                if (u < 0x20 || u >= 0x7F)
                    __builtin_trap();
            }
            break;
        case 3:
            (void)scep::parse_dn(text);
            break;
        default:
            if (auto t = timers::parse_iso8601(text)) {
                auto again = timers::parse_iso8601(timers::to_iso8601(*t));
                if (!again || *again != *t)
                    __builtin_trap();
            }
            break;
    }
    return 0;
}
