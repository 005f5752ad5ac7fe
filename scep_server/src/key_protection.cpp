#include "pkisim/scep/key_protection.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"

namespace pkisim::scep {

namespace {

using p8_info_ptr = std::unique_ptr<PKCS8_PRIV_KEY_INFO,
                                    openssl_deleter<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>>;
using x509_sig_ptr = std::unique_ptr<X509_SIG, openssl_deleter<X509_SIG, X509_SIG_free>>;
using pbe2_ptr = std::unique_ptr<PBE2PARAM, openssl_deleter<PBE2PARAM, PBE2PARAM_free>>;
using pbkdf2_ptr = std::unique_ptr<PBKDF2PARAM, openssl_deleter<PBKDF2PARAM, PBKDF2PARAM_free>>;

[[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string{what} + " failed");
}

}  // namespace

std::string encrypt_private_key_pem_with(const EVP_PKEY* key, std::string_view passphrase,
                                         int iterations) {
    if (passphrase.size() > static_cast<std::size_t>(INT_MAX))
        throw std::invalid_argument("passphrase too long");
    p8_info_ptr info{EVP_PKEY2PKCS8(key)};
    if (!info)
        fail("EVP_PKEY2PKCS8");
    // pbe_nid -1 = PBES2 with `cipher`; OpenSSL 3 makes the PRF hmacWithSHA256 and a random
    // 16-byte salt and IV (PKCS5_pbe2_set_iv_ex).
    x509_sig_ptr sig{PKCS8_encrypt(-1, EVP_aes_256_cbc(), passphrase.data(),
                                   static_cast<int>(passphrase.size()), nullptr, 0, iterations,
                                   info.get())};
    if (!sig)
        fail("PKCS8_encrypt");
    bio_ptr bio{BIO_new(BIO_s_mem())};
    if (!bio || PEM_write_bio_PKCS8(bio.get(), sig.get()) != 1)
        fail("PEM_write_bio_PKCS8");
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::optional<long> pbkdf2_iterations(std::string_view pem) {
    if (pem.size() > static_cast<std::size_t>(INT_MAX))
        return std::nullopt;
    bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
    if (!bio)
        return std::nullopt;
    x509_sig_ptr sig{PEM_read_bio_PKCS8(bio.get(), nullptr, nullptr, nullptr)};
    if (!sig)
        return std::nullopt;
    const X509_ALGOR* alg = nullptr;
    X509_SIG_get0(sig.get(), &alg, nullptr);
    const ASN1_OBJECT* oid = nullptr;
    int ptype = 0;
    const void* pval = nullptr;
    X509_ALGOR_get0(&oid, &ptype, &pval, alg);
    if (OBJ_obj2nid(oid) != NID_pbes2 || ptype != V_ASN1_SEQUENCE)
        return std::nullopt;
    pbe2_ptr pbe2{static_cast<PBE2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter))};
    if (!pbe2 || OBJ_obj2nid(pbe2->keyfunc->algorithm) != NID_id_pbkdf2)
        return std::nullopt;
    pbkdf2_ptr kdf{static_cast<PBKDF2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter))};
    if (!kdf)
        return std::nullopt;
    const long iter = ASN1_INTEGER_get(kdf->iter);
    return iter > 0 ? std::optional<long>{iter} : std::nullopt;
}

int key_pbkdf2_iterations() {
    const char* text = std::getenv(test_kdf_iterations_env);
    if (!text || !*text)
        return ca_key_pbkdf2_iterations;
    const std::string_view v{text};
    int n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || end != v.data() + v.size() || n < test_kdf_min_iterations ||
        n > ca_key_pbkdf2_iterations) {
        throw startup_error(
            exit_status::config,
            fmt::format("{}={}: expected an integer from {} to {} (a test-suite setting; unset it)",
                        test_kdf_iterations_env, v, test_kdf_min_iterations,
                        ca_key_pbkdf2_iterations));
    }
    return n;
}

std::string encrypt_private_key_pem_at_work_factor(const EVP_PKEY* key,
                                                   std::string_view passphrase) {
    const int n = key_pbkdf2_iterations();
    static std::atomic<bool> warned{false};
    if (n < ca_key_pbkdf2_iterations && !warned.exchange(true)) {
        std::fprintf(stderr,
                     "pkisim: WARNING: %s=%d: private keys are encrypted with %d PBKDF2 "
                     "iterations instead of %d. FOR TESTS ONLY; never set it for a real CA.\n",
                     test_kdf_iterations_env, n, n, ca_key_pbkdf2_iterations);
    }
    return encrypt_private_key_pem_with(key, passphrase, n);
}

std::optional<std::string> reencrypt_if_weak(std::string_view pem, std::string_view passphrase) {
    const int want = key_pbkdf2_iterations();
    const auto iter = pbkdf2_iterations(pem);
    if (iter && *iter >= want)
        return std::nullopt;
    auto key = decrypt_private_key_pem(pem, passphrase);
    if (!key)
        return std::nullopt;
    return encrypt_private_key_pem_at_work_factor(key->get(), passphrase);
}

std::size_t migrate_key_encryption(store& db, std::string_view passphrase,
                                   std::span<const std::string_view> meta_keys) {
    std::vector<std::pair<int, std::string>> generations;
    for (const auto& g : db.ca_generations()) {
        if (g.key_pem.empty())
            continue;  // an RA's upstream CA generation: no key
        if (auto pem = reencrypt_if_weak(g.key_pem, passphrase))
            generations.emplace_back(g.id, std::move(*pem));
    }
    std::vector<std::pair<std::string_view, std::string>> metas;
    for (const auto name : meta_keys) {
        const auto stored = db.meta(name);
        if (!stored || stored->empty())
            continue;
        if (auto pem = reencrypt_if_weak(*stored, passphrase))
            metas.emplace_back(name, std::move(*pem));
    }
    if (!generations.empty() || !metas.empty()) {
        db.transact([&] {
            for (const auto& [id, pem] : generations)
                db.set_ca_key_pem(id, pem);
            for (const auto& [name, pem] : metas)
                db.set_meta(name, pem);
        });
    }
    return generations.size() + metas.size();
}

std::string read_secret_file(const std::filesystem::path& path, bool allow_shared,
                             std::string* warning) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw startup_error(exit_status::config,
                            fmt::format("cannot read {}: {}", path.string(), std::strerror(errno)));
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
        const auto text = fmt::format(
            "{} is accessible by group or others (mode {:04o}): a passphrase or challenge file "
            "must be private; run chmod 600 {}",
            path.string(), st.st_mode & 07777, path.string());
        if (!allow_shared) {
            ::close(fd);
            throw startup_error(exit_status::config,
                                text + " (or pass --allow-shared-secret-files)");
        }
        if (warning)
            *warning = text + " (used anyway: --allow-shared-secret-files)";
    }
    std::string content;
    char buf[4096];
    for (;;) {
        const auto n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        content.append(buf, static_cast<std::size_t>(n));
        if (content.find('\n') != std::string::npos || content.size() > 64 * 1024)
            break;
    }
    ::close(fd);
    std::string line = content.substr(0, content.find('\n'));
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n'))
        line.pop_back();
    return line;
}

}  // namespace pkisim::scep
