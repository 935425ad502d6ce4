/* Portable bias + activation: act_impl.h for the baseline target. */
#include "act.h"

#define ACT_NAME hw_bias_act_generic
#include "act_impl.h"
