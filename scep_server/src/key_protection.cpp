#include "pkisim/scep/key_protection.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
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

std::size_t migrate_ca_key_encryption(store& db, std::string_view passphrase) {
    std::vector<std::pair<int, std::string>> updates;
    for (const auto& g : db.ca_generations()) {
        const auto iter = pbkdf2_iterations(g.key_pem);
        if (iter && *iter >= ca_key_pbkdf2_iterations)
            continue;
        auto key = decrypt_private_key_pem(g.key_pem, passphrase);
        if (!key)
            continue;
        updates.emplace_back(
            g.id, encrypt_private_key_pem_with(key->get(), passphrase, ca_key_pbkdf2_iterations));
    }
    if (!updates.empty()) {
        db.transact([&] {
            for (const auto& [id, pem] : updates)
                db.set_ca_key_pem(id, pem);
        });
    }
    return updates.size();
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
