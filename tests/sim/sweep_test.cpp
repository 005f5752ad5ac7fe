// Sweeps (issue 9 §7): see below.
#include <gtest/gtest.h>
