/* stub: to be written */
typedef int genred_stub_nn;
