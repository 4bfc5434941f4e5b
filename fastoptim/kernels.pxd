# cython: language_level=3
"""Cython mirror of csrc/fastoptim.h -- the only place the C prototypes are declared for Cython.

Public: other Cython code embeds the kernels with ``from fastoptim.kernels cimport
fo_adam_step_f32`` and builds against the installed package with ``fastoptim-config --cflags``
(compile) and ``--libs`` (link: libfastoptim, with an rpath); see examples/cython/.  fastoptim's
own glue cimports it too (through fastoptim/_C/kernels.pxd).  Keep this file in step with the
header, section by section.
"""
from libc.stdint cimport int64_t, uint64_t

cdef extern from "fastoptim.h" nogil:
    # ---- versions ---------------------------------------------------------------------
    enum:
        FASTOPTIM_VERSION_MAJOR, FASTOPTIM_VERSION_MINOR, FASTOPTIM_VERSION_PATCH
        FASTOPTIM_ABI_VERSION
    int fo_abi_version()
    const char *fo_version()
    const char *fo_simd()

    # ---- tensor ops -------------------------------------------------------------------
    enum:
        FO_ADD, FO_SUB, FO_MUL, FO_DIV, FO_POW_T, FO_MAXIMUM, FO_MINIMUM
    enum:
        FO_NEG, FO_EXP, FO_LOG, FO_SQRT, FO_ABS, FO_RELU, FO_TANH, FO_SIGMOID, FO_CLAMP, FO_POW
        FO_ADD_S, FO_MUL_S, FO_RSUB_S, FO_RDIV_S, FO_DIV_S, FO_RPOW_S
        FO_SIN, FO_COS, FO_TAN, FO_ASIN, FO_ACOS, FO_ATAN, FO_SINH, FO_COSH, FO_EXP2, FO_EXPM1
        FO_LOG1P, FO_LOG2, FO_LOG10, FO_SIGN, FO_FLOOR, FO_CEIL, FO_ROUND, FO_TRUNC
        FO_RECIPROCAL, FO_RSQRT, FO_SQUARE, FO_ERF, FO_SOFTPLUS

    void fo_binary_f32(int op, int ndim, const int64_t *shape, float *out,
                       const float *a, const int64_t *sa, const float *b, const int64_t *sb)
    void fo_binary_f64(int op, int ndim, const int64_t *shape, double *out,
                       const double *a, const int64_t *sa, const double *b, const int64_t *sb)
    void fo_binary_backward_f32(int op, int ndim, const int64_t *shape, const float *g,
                                const float *a, const int64_t *sa, const float *b,
                                const int64_t *sb, float *ga, float *gb)
    void fo_binary_backward_f64(int op, int ndim, const int64_t *shape, const double *g,
                                const double *a, const int64_t *sa, const double *b,
                                const int64_t *sb, double *ga, double *gb)
    void fo_unary_f32(int op, int64_t n, float *out, const float *x, double p0, double p1)
    void fo_unary_f64(int op, int64_t n, double *out, const double *x, double p0, double p1)
    void fo_unary_backward_f32(int op, int64_t n, const float *g, const float *x,
                               const float *y, double p0, double p1, float *gx)
    void fo_unary_backward_f64(int op, int64_t n, const double *g, const double *x,
                               const double *y, double p0, double p1, double *gx)
    void fo_inplace_binary_f32(int op, int64_t n, float *x, const float *a, int64_t a_n,
                               double alpha)
    void fo_inplace_binary_f64(int op, int64_t n, double *x, const double *a, int64_t a_n,
                               double alpha)
    void fo_addcmul_f32(int64_t n, float *x, const float *a, const float *b, double value)
    void fo_addcmul_f64(int64_t n, double *x, const double *a, const double *b, double value)
    void fo_addcdiv_f32(int64_t n, float *x, const float *a, const float *b, double value)
    void fo_addcdiv_f64(int64_t n, double *x, const double *a, const double *b, double value)
    void fo_lerp_f32(int64_t n, float *x, const float *a, double w)
    void fo_lerp_f64(int64_t n, double *x, const double *a, double w)
    double fo_sum_f32(int64_t n, const float *x)
    double fo_sum_f64(int64_t n, const double *x)
    void fo_sum_axis_f32(int64_t outer, int64_t n, int64_t inner, const float *x,
                         double scale, float *out)
    void fo_sum_axis_f64(int64_t outer, int64_t n, int64_t inner, const double *x,
                         double scale, double *out)
    void fo_expand_axis_f32(int64_t outer, int64_t n, int64_t inner, const float *g,
                            double scale, float *out)
    void fo_expand_axis_f64(int64_t outer, int64_t n, int64_t inner, const double *g,
                            double scale, double *out)
    double fo_extreme_f32(int64_t n, const float *x, int want_max, int64_t *count)
    double fo_extreme_f64(int64_t n, const double *x, int want_max, int64_t *count)
    void fo_extreme_backward_f32(int64_t n, const float *x, double m, double g, int64_t count,
                                 float *gx)
    void fo_extreme_backward_f64(int64_t n, const double *x, double m, double g, int64_t count,
                                 double *gx)
    void fo_matmul_f32(int64_t M, int64_t N, int64_t K, const float *A, int trans_a,
                       const float *B, int trans_b, const float *bias, float *C)
    void fo_matmul_f64(int64_t M, int64_t N, int64_t K, const double *A, int trans_a,
                       const double *B, int trans_b, const double *bias, double *C)
    double fo_mse_f32(int64_t n, const float *a, const float *b)
    double fo_mse_f64(int64_t n, const double *a, const double *b)
    void fo_mse_backward_f32(int64_t n, const float *a, const float *b, const float *g,
                             double g0, double scale, float *ga, float *gb)
    void fo_mse_backward_f64(int64_t n, const double *a, const double *b, const double *g,
                             double g0, double scale, double *ga, double *gb)

    # ---- random numbers ---------------------------------------------------------------
    ctypedef struct fo_rng:
        uint64_t s[4]
        double spare
        int has_spare
    void fo_rng_seed(fo_rng *rng, uint64_t seed)
    void fo_randn_f32(fo_rng *rng, int64_t n, float *out)
    void fo_randn_f64(fo_rng *rng, int64_t n, double *out)
    void fo_uniform_f32(fo_rng *rng, int64_t n, float *out, double lo, double hi)
    void fo_uniform_f64(fo_rng *rng, int64_t n, double *out, double lo, double hi)

    # ---- the tensor kernels by dtype (one table per element type) --------------------
    ctypedef struct fo_tensor_kernels:
        int itemsize
        void (*binary)(int op, int ndim, const int64_t *shape, void *out, const void *a,
                       const int64_t *sa, const void *b, const int64_t *sb)
        void (*binary_backward)(int op, int ndim, const int64_t *shape, const void *g,
                                const void *a, const int64_t *sa, const void *b,
                                const int64_t *sb, void *ga, void *gb)
        void (*unary)(int op, int64_t n, void *out, const void *x, double p0, double p1)
        void (*unary_backward)(int op, int64_t n, const void *g, const void *x, const void *y,
                               double p0, double p1, void *gx)
        void (*inplace_binary)(int op, int64_t n, void *x, const void *a, int64_t a_n,
                               double alpha)
        void (*addcmul)(int64_t n, void *x, const void *a, const void *b, double value)
        void (*addcdiv)(int64_t n, void *x, const void *a, const void *b, double value)
        void (*lerp)(int64_t n, void *x, const void *a, double w)
        double (*sum)(int64_t n, const void *x)
        void (*sum_axis)(int64_t outer, int64_t n, int64_t inner, const void *x, double scale,
                         void *out)
        void (*expand_axis)(int64_t outer, int64_t n, int64_t inner, const void *g,
                            double scale, void *out)
        double (*extreme)(int64_t n, const void *x, int want_max, int64_t *count)
        void (*extreme_backward)(int64_t n, const void *x, double m, double g, int64_t count,
                                 void *gx)
        void (*matmul)(int64_t M, int64_t N, int64_t K, const void *A, int trans_a,
                       const void *B, int trans_b, const void *bias, void *C)
        double (*mse)(int64_t n, const void *a, const void *b)
        void (*mse_backward)(int64_t n, const void *a, const void *b, const void *g, double g0,
                             double scale, void *ga, void *gb)
        void (*randn)(fo_rng *rng, int64_t n, void *out)
        void (*uniform)(fo_rng *rng, int64_t n, void *out, double lo, double hi)
    const fo_tensor_kernels fo_tensor_kernels_f32
    const fo_tensor_kernels fo_tensor_kernels_f64

    # ---- nn losses, softmax and activations (csrc/tensor_loss.c, tensor_nnops.c) --------
    enum:
        FO_LOSS_L1, FO_LOSS_SMOOTH_L1, FO_LOSS_HUBER, FO_LOSS_BCE, FO_LOSS_BCE_LOGITS
    enum:
        FO_ACT_LEAKY_RELU, FO_ACT_ELU, FO_ACT_GELU, FO_ACT_GELU_TANH, FO_ACT_SILU
    int64_t fo_first_bad_target(int64_t n, const int64_t *target, int64_t n_classes,
                                int64_t ignore_index)
    void fo_randperm(fo_rng *rng, int64_t n, int64_t *out)
    void fo_linspace_f32(int64_t n, float start, float end, float *out)
    void fo_linspace_f64(int64_t n, double start, double end, double *out)
    void fo_linspace_i64(int64_t n, int64_t start, int64_t end, int64_t *out)
    int64_t fo_softmax_saved_size(int64_t outer, int64_t n, int64_t inner)
    ctypedef struct fo_loss_kernels:
        void (*softmax)(int64_t outer, int64_t n, int64_t inner, const void *x, int log_,
                        void *out, void *saved)
        void (*softmax_backward)(int64_t outer, int64_t n, int64_t inner, const void *y,
                                 const void *g, int log_, void *gx, const void *saved)
        double (*nll)(int64_t outer, int64_t C, int64_t inner, const void *lp,
                      const int64_t *target, const void *weight, int64_t ignore_index,
                      double smoothing, void *out, double *wsum)
        void (*nll_backward)(int64_t outer, int64_t C, int64_t inner, const void *lp,
                             const int64_t *target, const void *weight, int64_t ignore_index,
                             double smoothing, const void *g, double g0,
                             int through_log_softmax, void *gx)
        double (*soft_ce)(int64_t outer, int64_t C, int64_t inner, const void *lp,
                          const void *target, const void *weight, double smoothing,
                          void *out)
        void (*soft_ce_backward)(int64_t outer, int64_t C, int64_t inner, const void *lp,
                                 const void *target, const void *weight, double smoothing,
                                 const void *g, double g0, void *gx, void *gt)
        double (*pointwise)(int kind, int64_t n, const void *x, const void *y, const void *w,
                            const void *pw, double p, void *out, void *aux)
        void (*pointwise_backward)(int kind, int64_t n, const void *x, const void *y,
                                   const void *w, const void *pw, double p, const void *g,
                                   double g0, void *gx, void *gy, const void *aux)
        int64_t (*first_outside)(int64_t n, const void *x, double lo, double hi)
        double (*cross_entropy)(int64_t outer, int64_t C, int64_t inner, const void *x,
                                const int64_t *target, const void *weight,
                                int64_t ignore_index, double smoothing, void *out,
                                void *probs, double *wsum)
        void (*cross_entropy_backward)(int64_t outer, int64_t C, int64_t inner,
                                       const void *probs, const int64_t *target,
                                       const void *weight, int64_t ignore_index,
                                       double smoothing, const void *g, double g0, void *gx)
    const fo_loss_kernels fo_loss_kernels_f32
    const fo_loss_kernels fo_loss_kernels_f64
    ctypedef struct fo_act_kernels:
        void (*activation)(int op, int64_t n, const void *x, double p0, void *out)
        void (*activation_backward)(int op, int64_t n, const void *g, const void *x,
                                    double p0, void *gx)
    const fo_act_kernels fo_act_kernels_f32
    const fo_act_kernels fo_act_kernels_f64

    # ---- optimizer updates ------------------------------------------------------------
    # @@OPTIM-PROTOTYPES@@ (optimizer kernels go below this line)
    ctypedef struct fo_sgd_hyper:
        double lr, momentum, dampening, weight_decay
        int nesterov, maximize
    void fo_sgd_update_f32(float *const *params, const float *const *grads,
                           float *const *momentum_buffers, const unsigned char *buffer_is_new,
                           const int64_t *numels, int64_t ntensors, const fo_sgd_hyper *hyper)
    void fo_sgd_update_f64(double *const *params, const double *const *grads,
                           double *const *momentum_buffers, const unsigned char *buffer_is_new,
                           const int64_t *numels, int64_t ntensors, const fo_sgd_hyper *hyper)
    void fo_sgd_step_f32(float *const *params, const float *const *grads,
                         float *const *momentum_buffers, const unsigned char *buffer_is_new,
                         const int64_t *numels, int64_t ntensors, double lr, double momentum,
                         double dampening, double weight_decay, int nesterov, int maximize)
    void fo_sgd_step_f64(double *const *params, const double *const *grads,
                         double *const *momentum_buffers, const unsigned char *buffer_is_new,
                         const int64_t *numels, int64_t ntensors, double lr, double momentum,
                         double dampening, double weight_decay, int nesterov, int maximize)
    ctypedef struct fo_adam_hyper:
        double lr, beta1, beta2, eps, weight_decay
        int amsgrad, maximize, decoupled_weight_decay
    void fo_adam_update_f32(float *const *params, const float *const *grads,
                            float *const *exp_avgs, float *const *exp_avg_sqs,
                            float *const *max_exp_avg_sqs, float *const *steps,
                            const int64_t *numels, int64_t ntensors, const fo_adam_hyper *hyper)
    void fo_adam_update_f64(double *const *params, const double *const *grads,
                            double *const *exp_avgs, double *const *exp_avg_sqs,
                            double *const *max_exp_avg_sqs, float *const *steps,
                            const int64_t *numels, int64_t ntensors, const fo_adam_hyper *hyper)
    void fo_adam_step_f32(float *const *params, const float *const *grads,
                          float *const *exp_avgs, float *const *exp_avg_sqs,
                          float *const *max_exp_avg_sqs, float *const *steps,
                          const int64_t *numels, int64_t ntensors, double lr, double beta1,
                          double beta2, double eps, double weight_decay, int amsgrad,
                          int maximize, int decoupled_weight_decay)
    void fo_adam_step_f64(double *const *params, const double *const *grads,
                          double *const *exp_avgs, double *const *exp_avg_sqs,
                          double *const *max_exp_avg_sqs, float *const *steps,
                          const int64_t *numels, int64_t ntensors, double lr, double beta1,
                          double beta2, double eps, double weight_decay, int amsgrad,
                          int maximize, int decoupled_weight_decay)
    ctypedef struct fo_rmsprop_hyper:
        double lr, alpha, eps, weight_decay, momentum
        int centered, maximize
    void fo_rmsprop_update_f32(float *const *params, const float *const *grads,
                               float *const *square_avgs, float *const *grad_avgs,
                               float *const *momentum_buffers, float *const *steps,
                               const int64_t *numels, int64_t ntensors,
                               const fo_rmsprop_hyper *hyper)
    void fo_rmsprop_update_f64(double *const *params, const double *const *grads,
                               double *const *square_avgs, double *const *grad_avgs,
                               double *const *momentum_buffers, float *const *steps,
                               const int64_t *numels, int64_t ntensors,
                               const fo_rmsprop_hyper *hyper)
    void fo_rmsprop_step_f32(float *const *params, const float *const *grads,
                             float *const *square_avgs, float *const *grad_avgs,
                             float *const *momentum_buffers, float *const *steps,
                             const int64_t *numels, int64_t ntensors, double lr, double alpha,
                             double eps, double weight_decay, double momentum, int centered,
                             int maximize)
    void fo_rmsprop_step_f64(double *const *params, const double *const *grads,
                             double *const *square_avgs, double *const *grad_avgs,
                             double *const *momentum_buffers, float *const *steps,
                             const int64_t *numels, int64_t ntensors, double lr, double alpha,
                             double eps, double weight_decay, double momentum, int centered,
                             int maximize)
    ctypedef struct fo_adagrad_hyper:
        double lr, weight_decay, lr_decay, eps
        int maximize
    void fo_adagrad_update_f32(float *const *params, const float *const *grads,
                               float *const *state_sums, float *const *steps,
                               const int64_t *numels, int64_t ntensors,
                               const fo_adagrad_hyper *hyper)
    void fo_adagrad_update_f64(double *const *params, const double *const *grads,
                               double *const *state_sums, float *const *steps,
                               const int64_t *numels, int64_t ntensors,
                               const fo_adagrad_hyper *hyper)
    void fo_adagrad_step_f32(float *const *params, const float *const *grads,
                             float *const *state_sums, float *const *steps,
                             const int64_t *numels, int64_t ntensors, double lr,
                             double weight_decay, double lr_decay, double eps, int maximize)
    void fo_adagrad_step_f64(double *const *params, const double *const *grads,
                             double *const *state_sums, float *const *steps,
                             const int64_t *numels, int64_t ntensors, double lr,
                             double weight_decay, double lr_decay, double eps, int maximize)
    ctypedef struct fo_adadelta_hyper:
        double lr, rho, eps, weight_decay
        int maximize
    void fo_adadelta_update_f32(float *const *params, const float *const *grads,
                                float *const *square_avgs, float *const *acc_deltas,
                                float *const *steps, const int64_t *numels, int64_t ntensors,
                                const fo_adadelta_hyper *hyper)
    void fo_adadelta_update_f64(double *const *params, const double *const *grads,
                                double *const *square_avgs, double *const *acc_deltas,
                                float *const *steps, const int64_t *numels, int64_t ntensors,
                                const fo_adadelta_hyper *hyper)
    void fo_adadelta_step_f32(float *const *params, const float *const *grads,
                              float *const *square_avgs, float *const *acc_deltas,
                              float *const *steps, const int64_t *numels, int64_t ntensors,
                              double lr, double rho, double eps, double weight_decay,
                              int maximize)
    void fo_adadelta_step_f64(double *const *params, const double *const *grads,
                              double *const *square_avgs, double *const *acc_deltas,
                              float *const *steps, const int64_t *numels, int64_t ntensors,
                              double lr, double rho, double eps, double weight_decay,
                              int maximize)

    ctypedef struct fo_adamax_hyper:
        double lr, beta1, beta2, eps, weight_decay
        int maximize
    void fo_adamax_update_f32(float *const *params, const float *const *grads,
                              float *const *exp_avgs, float *const *exp_infs,
                              float *const *steps, const int64_t *numels, int64_t ntensors,
                              const fo_adamax_hyper *hyper)
    void fo_adamax_update_f64(double *const *params, const double *const *grads,
                              double *const *exp_avgs, double *const *exp_infs,
                              float *const *steps, const int64_t *numels, int64_t ntensors,
                              const fo_adamax_hyper *hyper)
    void fo_adamax_step_f32(float *const *params, const float *const *grads,
                            float *const *exp_avgs, float *const *exp_infs, float *const *steps,
                            const int64_t *numels, int64_t ntensors, double lr, double beta1,
                            double beta2, double eps, double weight_decay, int maximize)
    void fo_adamax_step_f64(double *const *params, const double *const *grads,
                            double *const *exp_avgs, double *const *exp_infs,
                            float *const *steps, const int64_t *numels, int64_t ntensors,
                            double lr, double beta1, double beta2, double eps,
                            double weight_decay, int maximize)

    ctypedef struct fo_radam_hyper:
        double lr, beta1, beta2, eps, weight_decay
        int decoupled_weight_decay, maximize
    void fo_radam_update_f32(float *const *params, const float *const *grads,
                             float *const *exp_avgs, float *const *exp_avg_sqs,
                             float *const *steps, const int64_t *numels, int64_t ntensors,
                             const fo_radam_hyper *hyper)
    void fo_radam_update_f64(double *const *params, const double *const *grads,
                             double *const *exp_avgs, double *const *exp_avg_sqs,
                             float *const *steps, const int64_t *numels, int64_t ntensors,
                             const fo_radam_hyper *hyper)
    void fo_radam_step_f32(float *const *params, const float *const *grads,
                           float *const *exp_avgs, float *const *exp_avg_sqs,
                           float *const *steps, const int64_t *numels, int64_t ntensors,
                           double lr, double beta1, double beta2, double eps,
                           double weight_decay, int decoupled_weight_decay, int maximize)
    void fo_radam_step_f64(double *const *params, const double *const *grads,
                           double *const *exp_avgs, double *const *exp_avg_sqs,
                           float *const *steps, const int64_t *numels, int64_t ntensors,
                           double lr, double beta1, double beta2, double eps,
                           double weight_decay, int decoupled_weight_decay, int maximize)

    ctypedef struct fo_rprop_hyper:
        double etaminus, etaplus, step_size_min, step_size_max
        int maximize
    void fo_rprop_update_f32(float *const *params, const float *const *grads,
                             float *const *prevs, float *const *step_sizes,
                             float *const *steps, const int64_t *numels, int64_t ntensors,
                             const fo_rprop_hyper *hyper)
    void fo_rprop_update_f64(double *const *params, const double *const *grads,
                             double *const *prevs, double *const *step_sizes,
                             float *const *steps, const int64_t *numels, int64_t ntensors,
                             const fo_rprop_hyper *hyper)
    void fo_rprop_step_f32(float *const *params, const float *const *grads,
                           float *const *prevs, float *const *step_sizes, float *const *steps,
                           const int64_t *numels, int64_t ntensors, double etaminus,
                           double etaplus, double step_size_min, double step_size_max,
                           int maximize)
    void fo_rprop_step_f64(double *const *params, const double *const *grads,
                           double *const *prevs, double *const *step_sizes,
                           float *const *steps, const int64_t *numels, int64_t ntensors,
                           double etaminus, double etaplus, double step_size_min,
                           double step_size_max, int maximize)

    ctypedef struct fo_nadam_hyper:
        double lr, beta1, beta2, eps, weight_decay, momentum_decay
        int decoupled_weight_decay, maximize
    void fo_nadam_update_f32(float *const *params, const float *const *grads,
                             float *const *exp_avgs, float *const *exp_avg_sqs,
                             void *const *mu_products, float *const *steps,
                             const int64_t *numels, int64_t ntensors, int scalars_f64,
                             const fo_nadam_hyper *hyper)
    void fo_nadam_update_f64(double *const *params, const double *const *grads,
                             double *const *exp_avgs, double *const *exp_avg_sqs,
                             void *const *mu_products, float *const *steps,
                             const int64_t *numels, int64_t ntensors, int scalars_f64,
                             const fo_nadam_hyper *hyper)
    void fo_nadam_step_f32(float *const *params, const float *const *grads,
                           float *const *exp_avgs, float *const *exp_avg_sqs,
                           void *const *mu_products, float *const *steps,
                           const int64_t *numels, int64_t ntensors, int scalars_f64,
                           double lr, double beta1, double beta2, double eps,
                           double weight_decay, double momentum_decay,
                           int decoupled_weight_decay, int maximize)
    void fo_nadam_step_f64(double *const *params, const double *const *grads,
                           double *const *exp_avgs, double *const *exp_avg_sqs,
                           void *const *mu_products, float *const *steps,
                           const int64_t *numels, int64_t ntensors, int scalars_f64,
                           double lr, double beta1, double beta2, double eps,
                           double weight_decay, double momentum_decay,
                           int decoupled_weight_decay, int maximize)
    void fo_nadam_advance(void *const *mu_products, const float *const *steps,
                          int64_t ntensors, int scalars_f64, const fo_nadam_hyper *hyper)

    ctypedef struct fo_asgd_hyper:
        double lr, lambd, alpha, t0, weight_decay
        int maximize
    void fo_asgd_update_f32(float *const *params, const float *const *grads,
                            float *const *axs, void *const *mus, void *const *etas,
                            float *const *steps, const int64_t *numels, int64_t ntensors,
                            int scalars_f64, const fo_asgd_hyper *hyper)
    void fo_asgd_update_f64(double *const *params, const double *const *grads,
                            double *const *axs, void *const *mus, void *const *etas,
                            float *const *steps, const int64_t *numels, int64_t ntensors,
                            int scalars_f64, const fo_asgd_hyper *hyper)
    void fo_asgd_step_f32(float *const *params, const float *const *grads, float *const *axs,
                          void *const *mus, void *const *etas, float *const *steps,
                          const int64_t *numels, int64_t ntensors, int scalars_f64,
                          double lr, double lambd, double alpha, double t0,
                          double weight_decay, int maximize)
    void fo_asgd_step_f64(double *const *params, const double *const *grads,
                          double *const *axs, void *const *mus, void *const *etas,
                          float *const *steps, const int64_t *numels, int64_t ntensors,
                          int scalars_f64, double lr, double lambd, double alpha, double t0,
                          double weight_decay, int maximize)
    void fo_asgd_advance(void *const *mus, void *const *etas, const float *const *steps,
                         int64_t ntensors, int scalars_f64, const fo_asgd_hyper *hyper)

    # ---- model averaging (swa_utils.AveragedModel) -----------------------------------------
    enum:
        FO_AVERAGE_LERP, FO_AVERAGE_MEAN
    void fo_average_f32(float *const *averaged, const float *const *model,
                        const int64_t *numels, int64_t ntensors, int mode, double weight)
    void fo_average_f64(double *const *averaged, const double *const *model,
                        const int64_t *numels, int64_t ntensors, int mode, double weight)

    # ---- Adafactor (a group's step; not elementwise) -----------------------------------
    ctypedef struct fo_adafactor_hyper:
        double lr
        double beta2_decay
        double eps1
        double eps2
        double d
        double weight_decay
        int maximize
    ctypedef struct fo_adafactor_tensor_f32:
        float *param
        const float *grad
        float *row_var
        float *col_var
        float *variance
        float *step
        int64_t batch
        int64_t rows
        int64_t cols
    ctypedef struct fo_adafactor_tensor_f64:
        double *param
        const double *grad
        double *row_var
        double *col_var
        double *variance
        float *step
        int64_t batch
        int64_t rows
        int64_t cols
    int64_t fo_adafactor_work_size(int64_t numel, int64_t cols, int factored)
    void fo_adafactor_update_f32(const fo_adafactor_tensor_f32 *tensors, int64_t ntensors,
                                 const fo_adafactor_hyper *hyper, double *work)
    void fo_adafactor_update_f64(const fo_adafactor_tensor_f64 *tensors, int64_t ntensors,
                                 const fo_adafactor_hyper *hyper, double *work)

    # ---- data-parallel gradient buckets (csrc/dist_pack.c) -------------------------------
    ctypedef struct fo_piece:
        int64_t lo
        int64_t n
        int64_t offset
    void fo_pack_pieces(void *buffer, int64_t itemsize, const fo_piece *pieces,
                        const void *const *srcs, int64_t npieces)
    void fo_unpack_pieces_f32(const float *buffer, const fo_piece *pieces, float *const *dsts,
                              int64_t npieces, float divisor)
    void fo_unpack_pieces_f64(const double *buffer, const fo_piece *pieces, double *const *dsts,
                              int64_t npieces, double divisor)

    # ---- L-BFGS's flat-vector work -------------------------------------------------------
    void fo_lbfgs_axpy_f32(int64_t n, double alpha, const float *x, float *y)
    void fo_lbfgs_axpy_f64(int64_t n, double alpha, const double *x, double *y)
    ctypedef struct fo_lbfgs_segment_f32:
        float *data
        int64_t numel
    ctypedef struct fo_lbfgs_segment_f64:
        double *data
        int64_t numel
    float fo_lbfgs_gather_f32(const fo_lbfgs_segment_f32 *segs, int64_t nsegs, float *flat)
    double fo_lbfgs_gather_f64(const fo_lbfgs_segment_f64 *segs, int64_t nsegs, double *flat)
    ctypedef struct fo_lbfgs_pair_args_f32:
        int64_t n
        const float *g
        const float *prev
        const float *d
        double t
        float *y
        float *s
        float ys
        float yy
    ctypedef struct fo_lbfgs_pair_args_f64:
        int64_t n
        const double *g
        const double *prev
        const double *d
        double t
        double *y
        double *s
        double ys
        double yy
    void fo_lbfgs_pair_f32(fo_lbfgs_pair_args_f32 *w)
    void fo_lbfgs_pair_f64(fo_lbfgs_pair_args_f64 *w)
    ctypedef struct fo_lbfgs_gather_pair_args_f32:
        const fo_lbfgs_segment_f32 *segs
        int64_t nsegs
        int64_t n
        const float *prev
        const float *d
        double t
        float *g
        float *y
        float *s
        float *q
        float gmax
        float ys
        float yy
        double sq
    ctypedef struct fo_lbfgs_gather_pair_args_f64:
        const fo_lbfgs_segment_f64 *segs
        int64_t nsegs
        int64_t n
        const double *prev
        const double *d
        double t
        double *g
        double *y
        double *s
        double *q
        double gmax
        double ys
        double yy
        double sq
    void fo_lbfgs_gather_pair_f32(fo_lbfgs_gather_pair_args_f32 *w)
    void fo_lbfgs_gather_pair_f64(fo_lbfgs_gather_pair_args_f64 *w)
    ctypedef struct fo_lbfgs_direction_args_f32:
        int64_t n
        int64_t m
        const float *const *dirs
        const float *const *stps
        const float *ro
        float h_diag
        const float *g
        float *d
        float *al
        float gtd
        int q_ready
        double sq
    ctypedef struct fo_lbfgs_direction_args_f64:
        int64_t n
        int64_t m
        const double *const *dirs
        const double *const *stps
        const double *ro
        double h_diag
        const double *g
        double *d
        double *al
        double gtd
        int q_ready
        double sq
    void fo_lbfgs_direction_f32(fo_lbfgs_direction_args_f32 *w)
    void fo_lbfgs_direction_f64(fo_lbfgs_direction_args_f64 *w)
    float fo_lbfgs_add_grad_f32(const fo_lbfgs_segment_f32 *segs, int64_t nsegs,
                                const float *d, double t)
    double fo_lbfgs_add_grad_f64(const fo_lbfgs_segment_f64 *segs, int64_t nsegs,
                                 const double *d, double t)
