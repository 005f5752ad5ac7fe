#include "pkisim/scep/store.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using testing::temp_dir;
using testing::test_epoch;

store::built_certificate fake_cert(std::uint64_t serial) {
    return {bytes{static_cast<std::uint8_t>(serial)}, "CN=x" + std::to_string(serial), test_epoch(),
            test_epoch() + timers::days{1}};
}

TEST(store, serials_increase_and_survive_reopen) {
    temp_dir dir;
    const auto file = dir.path / "pkisim.db";
    {
        store db{file};
        EXPECT_EQ(db.last_serial(), 0u);
        EXPECT_EQ(db.issue(std::nullopt, fake_cert), 1u);
        EXPECT_EQ(db.issue(std::nullopt, fake_cert), 2u);
    }
    store db{file};
    EXPECT_EQ(db.last_serial(), 2u);
    EXPECT_EQ(db.issue(std::nullopt, fake_cert), 3u);
    ASSERT_EQ(db.certificates().size(), 3u);
    EXPECT_EQ(db.certificate(3)->subject, "CN=x3");
}

TEST(store, failed_build_consumes_no_serial_and_stores_nothing) {
    temp_dir dir;
    store db{dir.path / "pkisim.db"};
    db.issue(std::nullopt, fake_cert);
    EXPECT_THROW(db.issue(std::nullopt,
                          [](std::uint64_t) -> store::built_certificate {
                              throw store_error("openssl failed");
                          }),
                 store_error);
    EXPECT_EQ(db.last_serial(), 1u);
    EXPECT_EQ(db.issue(std::nullopt, fake_cert), 2u);
    EXPECT_EQ(db.certificates().size(), 2u);
}

TEST(store, issuing_marks_the_request_issued_in_the_same_transaction) {
    temp_dir dir;
    store db{dir.path / "pkisim.db"};
    request_record r;
    r.transaction_id = "tid-1";
    r.csr_der = {1, 2, 3};
    r.created = test_epoch();
    r.expires = test_epoch() + timers::hours{168};
    const auto id = db.add_request(r);
    EXPECT_EQ(db.request(id)->state, request_state::pending);
    const auto serial = db.issue(id, fake_cert);
    const auto stored = db.request(id);
    EXPECT_EQ(stored->state, request_state::issued);
    EXPECT_EQ(stored->serial, serial);
    EXPECT_EQ(db.certificate(serial)->request_id, id);
    EXPECT_EQ(db.requests_by_transaction("tid-1").size(), 1u);
}

TEST(store, pending_requests_expire_at_their_deadline) {
    temp_dir dir;
    store db{dir.path / "pkisim.db"};
    request_record r;
    r.transaction_id = "t";
    r.created = test_epoch();
    r.expires = test_epoch() + timers::hours{1};
    const auto id = db.add_request(r);
    EXPECT_EQ(db.expire_requests(test_epoch() + timers::minutes{59}), 0);
    EXPECT_EQ(db.expire_requests(test_epoch() + timers::hours{1}), 1);
    EXPECT_EQ(db.request(id)->state, request_state::expired);
}

TEST(store, one_time_passwords_work_once_and_expire) {
    temp_dir dir;
    store db{dir.path / "pkisim.db"};
    db.add_password("A1", test_epoch() + timers::minutes{60});
    db.add_password("B2", test_epoch() + timers::minutes{1});
    EXPECT_TRUE(db.consume_password("A1", test_epoch()));
    EXPECT_FALSE(db.consume_password("A1", test_epoch()));
    EXPECT_FALSE(db.consume_password("B2", test_epoch() + timers::minutes{2}));
    EXPECT_FALSE(db.consume_password("nope", test_epoch()));
}

TEST(store, revoking_keeps_the_first_time_and_crl_numbers_increase) {
    temp_dir dir;
    store db{dir.path / "pkisim.db"};
    db.issue(std::nullopt, fake_cert);
    EXPECT_TRUE(db.revoke(1, test_epoch()));
    EXPECT_TRUE(db.revoke(1, test_epoch() + timers::days{1}));
    EXPECT_FALSE(db.revoke(99, test_epoch()));
    ASSERT_EQ(db.revoked().size(), 1u);
    EXPECT_EQ(*db.revoked().front().revoked_at, test_epoch());
    EXPECT_EQ(db.next_crl_number(), 1u);
    EXPECT_EQ(db.next_crl_number(), 2u);
}

TEST(store, database_file_is_private_to_the_owner) {
    temp_dir dir;
    store db{dir.path / "pkisim.db"};
    struct stat st {};
    ASSERT_EQ(::stat((dir.path / "pkisim.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace pkisim::scep
