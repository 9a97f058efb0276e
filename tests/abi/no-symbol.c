/* no-symbol: a shared object that exports no descriptor at all. */
int no_symbol_fixture(void);

int
no_symbol_fixture(void)
{
	return 0;
}
