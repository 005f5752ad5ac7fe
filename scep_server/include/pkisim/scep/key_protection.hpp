// How the CA's private keys and the secrets the server reads are protected (issue 13 §4).
//
// PKCS#8 EncryptedPrivateKeyInfo, PBES2 = PBKDF2-HMAC-SHA256 + AES-256-CBC, with a current work
// factor: 600,000 PBKDF2 iterations (OWASP Password Storage Cheat Sheet, 2023, for
// PBKDF2-HMAC-SHA256). OpenSSL's PEM_write_bio_PKCS8PrivateKey uses 2,048 (PKCS5_DEFAULT_ITER),
// which is what data folders written before this change hold; migrate_ca_key_encryption()
// re-encrypts those at start-up.
//
//   auto pem = encrypt_private_key_pem_with(key, passphrase, ca_key_pbkdf2_iterations);
//   pbkdf2_iterations(pem);                        // 600000
//   migrate_ca_key_encryption(db, passphrase);     // at start: old keys re-encrypted
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "pkisim/scep/openssl.hpp"

namespace pkisim::scep {

class store;

inline constexpr int ca_key_pbkdf2_iterations = 600'000;

// PKCS#8 PBES2 (PBKDF2-HMAC-SHA256 with `iterations`, AES-256-CBC) PEM. Throws on resource
// errors only.
std::string encrypt_private_key_pem_with(const EVP_PKEY* key, std::string_view passphrase,
                                         int iterations);

// The PBKDF2 iteration count of an "ENCRYPTED PRIVATE KEY" PEM; nullopt when the text is not
// PKCS#8 PBES2 with PBKDF2 (unencrypted, PBES1, scrypt, garbage).
std::optional<long> pbkdf2_iterations(std::string_view pem);

// Re-encrypts, in one transaction, every stored CA generation key whose PBKDF2 work factor is
// below ca_key_pbkdf2_iterations. A key the passphrase does not open is left alone (the engine
// then reports the wrong passphrase). Returns how many keys it re-encrypted.
std::size_t migrate_ca_key_encryption(store& db, std::string_view passphrase);

// The first line of a passphrase or challenge file (trailing CR/LF removed). Like ssh with a
// private key, a regular file that group or others may access (mode & 077) is refused with
// startup_error(exit_status::config) naming the file, its mode and the fix, unless
// `allow_shared` (then `warning` is set to say so). Pipes and other non-regular files (`<(...)`)
// are read as they are. The check is on the opened descriptor (no race with a chmod).
std::string read_secret_file(const std::filesystem::path& path, bool allow_shared,
                             std::string* warning = nullptr);

}  // namespace pkisim::scep
