/* A shared object without the pxl_plugin descriptor. */
int not_a_plugin(void);
int not_a_plugin(void)
{
        return 42;
}
