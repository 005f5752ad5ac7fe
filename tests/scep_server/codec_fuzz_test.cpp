// Fuzz-ish robustness: seeded random mutations of valid pkiMessages never crash the decoder,
// and every failure is well-formed (ASan/UBSan builds run this too).
#include <array>
#include <random>

#include <gtest/gtest.h>

#include "pkisim/scep/codec.hpp"
#include "support_pki.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;

bytes mutate(const bytes& in, std::mt19937& rng) {
    bytes out = in;
    std::uniform_int_distribution<int> kind{0, 5};
    const auto pos = [&](std::size_t size) {
        return std::uniform_int_distribution<std::size_t>{0, size == 0 ? 0 : size - 1}(rng);
    };
    std::uniform_int_distribution<int> byte{0, 255};
    switch (kind(rng)) {
        case 0:  // flip one bit
            out[pos(out.size())] ^= static_cast<std::uint8_t>(1u << (byte(rng) % 8));
            break;
        case 1:  // random byte
            out[pos(out.size())] = static_cast<std::uint8_t>(byte(rng));
            break;
        case 2:  // truncate
            out.resize(pos(out.size()));
            break;
        case 3: {  // insert a few random bytes
            const std::size_t at = pos(out.size());
            bytes extra(static_cast<std::size_t>(byte(rng) % 8 + 1));
            for (auto& b : extra) {
                b = static_cast<std::uint8_t>(byte(rng));
            }
            out.insert(out.begin() + static_cast<std::ptrdiff_t>(at), extra.begin(), extra.end());
            break;
        }
        case 4: {  // length-byte damage: bump a byte that looks like a short length
            const std::size_t at = pos(out.size());
            out[at] = static_cast<std::uint8_t>(out[at] + (byte(rng) % 2 == 0 ? 1 : 0xff));
            break;
        }
        default: {  // overwrite a run with 0x00 / 0xff / 0x80
            const std::size_t at = pos(out.size());
            const std::size_t len = std::min<std::size_t>(out.size() - at, byte(rng) % 16 + 1);
            const std::uint8_t fill = std::array<std::uint8_t, 3>{0x00, 0xff, 0x80}[byte(rng) % 3];
            std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(at), len, fill);
            break;
        }
    }
    return out;
}

TEST(codec_fuzz, thousands_of_mutated_pki_messages_never_crash_and_fail_cleanly) {
    const authority ca = make_ca();
    const authority shadow = make_shadow(ca);
    const client c = make_client();
    const x509_ptr issued = issue_for(c, ca, 2);
    const std::vector<bytes> seeds{
        c.pkcs_req({ca.cert.get()}),
        c.cert_poll({ca.cert.get(), shadow.cert.get()}, ca.cert.get()),
        c.get_crl({ca.cert.get()}, issued.get()),
    };
    const std::array keys{ca.decryption(), shadow.decryption()};
    std::mt19937 rng{20300101};  // seeded: the run is reproducible
    int failures = 0;
    int successes = 0;
    for (int i = 0; i < 3000; ++i) {
        const bytes& seed = seeds[static_cast<std::size_t>(i) % seeds.size()];
        bytes m = mutate(seed, rng);
        if (i % 4 == 0) {
            m = mutate(m, rng);  // some double mutations
        }
        auto req = decode_pki_message(m, keys);
        if (req) {
            ++successes;
            EXPECT_NE(req->signer, nullptr);
            EXPECT_FALSE(req->transaction_id.empty());
            continue;
        }
        ++failures;
        const decode_failure& f = req.error();
        EXPECT_FALSE(f.text.empty());
        EXPECT_EQ(f.code.category(), scep_category());
        EXPECT_GE(static_cast<int>(f.info), 0);
        EXPECT_LE(static_cast<int>(f.info), 4);
        if (f.context) {
            EXPECT_NE(f.context->signer, nullptr);
            EXPECT_FALSE(f.context->transaction_id.empty());
            EXPECT_FALSE(f.context->sender_nonce.empty());
        }
        const wire_answer w = to_wire(f);
        EXPECT_TRUE(w.failure.has_value() || w.http_status == 400 || w.http_status == 413);
    }
    // Most mutations must be caught (signature / digest / structure checks).
    EXPECT_GT(failures, 2500) << successes << " mutated messages decoded";
}

TEST(codec_fuzz, mutated_cert_reps_and_bundles_never_crash_the_client_side) {
    const authority ca = make_ca();
    const authority shadow = make_shadow(ca);
    const client c = make_client();
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(c.pkcs_req({ca.cert.get()}), keys);
    ASSERT_TRUE(req);
    const x509_ptr issued = issue_for(c, ca, 2);
    const bytes reply = encode_cert_rep(success_for(req->context(), ca.cert.get(), ca.key,
                                                    {issued.get()}, test_epoch()))
                            .value();
    const std::array news{shadow.cert.get()};
    const bytes next =
        encode_get_next_ca_cert(news, ca.cert.get(), ca.key, NID_sha256, test_epoch()).value();
    const std::array pair{ca.cert.get(), shadow.cert.get()};
    const bytes bundle = degenerate_certs_only(pair);
    const std::array trusted{ca.cert.get()};
    std::mt19937 rng{42};
    for (int i = 0; i < 1500; ++i) {
        static_cast<void>(decode_cert_rep(mutate(reply, rng), c.self_signed.get(), c.key, trusted));
        static_cast<void>(parse_get_next_ca_cert(mutate(next, rng), trusted));
        static_cast<void>(parse_certs_only(mutate(bundle, rng)));
    }
    SUCCEED();
}

}  // namespace
}  // namespace pkisim::scep
