-- A key's own rate limit (a token bucket), in place of the server's default. Both NULL: the
-- default applies. `rate_limit_per_second = 0`: this key is not limited.
ALTER TABLE api_keys ADD COLUMN rate_limit_per_second BIGINT CHECK (rate_limit_per_second >= 0);
ALTER TABLE api_keys ADD COLUMN rate_limit_burst BIGINT CHECK (rate_limit_burst >= 1);
