/* stub */
typedef int genred_stub_train;
