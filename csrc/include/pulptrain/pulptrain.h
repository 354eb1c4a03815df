/* pulptrain.h - umbrella header of the pulptrain C runtime. */
#ifndef PULPTRAIN_H
#define PULPTRAIN_H

#define PULPTRAIN_VERSION "0.1.0"

#include "pt_status.h"
#include "pt_types.h"
#include "pt_parallel.h"
#include "pt_act.h"
#include "pt_gemm.h"
#include "pt_linear.h"
#include "pt_pointwise.h"
#include "pt_conv2d.h"
#include "pt_replay.h"
#include "pt_depthwise.h"
#include "pt_pool.h"
#include "pt_affine.h"
#include "pt_loss.h"
#include "pt_sgd.h"
#include "pt_qkernels.h"
#include "pt_dma.h"
#include "pt_tile.h"

#endif
