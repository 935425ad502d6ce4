/* Portable bias + activation: act_impl.h for the baseline target. */
#include "act.h"

#define ACT_NAME hw_bias_act_generic
#define ACT_BWD_NAME hw_act_bwd_generic
#include "act_impl.h"
