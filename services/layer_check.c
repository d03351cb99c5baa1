/*
 * layer_check.c - the whole program of each layer's link check (see
 * services/CMakeLists.txt): linked with every object of one layer and only
 * the layers below it, it builds only when no object of the layer calls
 * into a layer above.
 */
int
main(void)
{
	return (0);
}
