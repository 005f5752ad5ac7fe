// How the CA's private keys and the secrets the server reads are protected (issue 13 §4).
//
// PKCS#8 EncryptedPrivateKeyInfo, PBES2 = PBKDF2-HMAC-SHA256 + AES-256-CBC, with a current work
// factor: 600,000 PBKDF2 iterations (OWASP Password Storage Cheat Sheet, 2023, for
// PBKDF2-HMAC-SHA256). OpenSSL's PEM_write_bio_PKCS8PrivateKey uses 2,048 (PKCS5_DEFAULT_ITER),
// which is what data folders written before this change hold; migrate_key_encryption()
// re-encrypts those (CA generation keys and the RA's keys) at start-up.
//
//   auto pem = encrypt_private_key_pem_with(key, passphrase, key_pbkdf2_iterations());
//   pbkdf2_iterations(pem);                        // 600000
//   migrate_key_encryption(db, passphrase);        // at start: old CA keys re-encrypted
//   migrate_key_encryption(db, passphrase, ra_meta_keys);   // the RA's keys
//
// FOR TESTS ONLY: PKISIM_TEST_KDF_ITERATIONS=N (test_kdf_min_iterations <= N <= 600,000) makes
// new and migrated keys use N iterations, with a warning on stderr, so the test suite does not
// spend ~1 s of PBKDF2 per engine it starts (the ctest presets set it; the work-factor tests
// clear it). It never lowers the bar below what the migration detects: N > 2,048, so a key
// written with OpenSSL's default is still re-encrypted.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "pkisim/scep/openssl.hpp"

namespace pkisim::scep {

class store;

// The work factor of every key pkisim encrypts (CA and RA keys).
inline constexpr int ca_key_pbkdf2_iterations = 600'000;
// OpenSSL's default (PKCS5_DEFAULT_ITER), what keys from before issue 13 hold.
inline constexpr int openssl_default_pbkdf2_iterations = 2'048;
// The test override: its name and its floor (twice OpenSSL's default: such keys stay "old").
inline constexpr const char* test_kdf_iterations_env = "PKISIM_TEST_KDF_ITERATIONS";
inline constexpr int test_kdf_min_iterations = 2 * openssl_default_pbkdf2_iterations;

// ca_key_pbkdf2_iterations, or PKISIM_TEST_KDF_ITERATIONS when set (read at each call). A
// value that is not an integer in [test_kdf_min_iterations, ca_key_pbkdf2_iterations] throws
// startup_error(config).
int key_pbkdf2_iterations();

// encrypt_private_key_pem_with(key, passphrase, key_pbkdf2_iterations()); the first key a
// process writes below ca_key_pbkdf2_iterations prints a WARNING line on stderr.
std::string encrypt_private_key_pem_at_work_factor(const EVP_PKEY* key,
                                                   std::string_view passphrase);

// PKCS#8 PBES2 (PBKDF2-HMAC-SHA256 with `iterations`, AES-256-CBC) PEM. Throws on resource
// errors only.
std::string encrypt_private_key_pem_with(const EVP_PKEY* key, std::string_view passphrase,
                                         int iterations);

// The PBKDF2 iteration count of an "ENCRYPTED PRIVATE KEY" PEM; nullopt when the text is not
// PKCS#8 PBES2 with PBKDF2 (unencrypted, PBES1, scrypt, garbage).
std::optional<long> pbkdf2_iterations(std::string_view pem);

// The key in `pem` re-encrypted at key_pbkdf2_iterations() when its PBKDF2 work factor is below
// that (or it is not PBES2/PBKDF2); nullopt when it is strong enough or `passphrase` does not
// open it (the caller then reports the wrong passphrase as before).
std::optional<std::string> reencrypt_if_weak(std::string_view pem, std::string_view passphrase);

// The store meta entries that hold the RA's keys (its current and its rollover key).
inline constexpr std::string_view ra_key_meta = "ra_key";
inline constexpr std::string_view ra_shadow_key_meta = "shadow_ra_key";
inline constexpr std::string_view ra_meta_keys_array[] = {ra_key_meta, ra_shadow_key_meta};
inline constexpr std::span<const std::string_view> ra_meta_keys{ra_meta_keys_array};

// Re-encrypts with reencrypt_if_weak(), in one transaction, every stored CA generation key and
// every non-empty meta entry named in `meta_keys` (the RA passes ra_meta_keys). Keys the
// passphrase does not open are left alone. Returns how many keys it re-encrypted.
std::size_t migrate_key_encryption(store& db, std::string_view passphrase,
                                   std::span<const std::string_view> meta_keys = {});

// The first line of a passphrase or challenge file (trailing CR/LF removed). Like ssh with a
// private key, a regular file that group or others may access (mode & 077) is refused with
// startup_error(exit_status::config) naming the file, its mode and the fix, unless
// `allow_shared` (then `warning` is set to say so). Pipes and other non-regular files (`<(...)`)
// are read as they are. The check is on the opened descriptor (no race with a chmod).
std::string read_secret_file(const std::filesystem::path& path, bool allow_shared,
                             std::string* warning = nullptr);

}  // namespace pkisim::scep
