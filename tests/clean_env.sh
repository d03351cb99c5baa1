# clean_env.sh - sourced first by every shell test and benchmark script:
# unsets every AFFILIATE_* variable except the ones ctest hands each test
# (AFFILIATE_BIN_DIR, AFFILIATE_SOURCE_DIR) and the test switches
# (AFFILIATE_TEST_*), so a run sees only what the script sets itself,
# whatever the caller's shell exports (an exported AFFILIATE_WEBHOOK_SECRET
# once broke test_cli). The C tests do the same in tests/testutil.c.
for _v in $(compgen -e | grep '^AFFILIATE_'); do
	case $_v in
	AFFILIATE_BIN_DIR | AFFILIATE_SOURCE_DIR | AFFILIATE_TEST_*) ;;
	*) unset "$_v" ;;
	esac
done
unset _v
