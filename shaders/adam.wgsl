// Adam, exactly torch.optim.Adam (no weight decay, no amsgrad), over one flat parameter arena.
//
// Math:     g = clamp(grad, -clip, clip) when clip > 0 (torch.nn.utils.clip_grad_value_)
//           m = beta1 * m + (1 - beta1) * g
//           v = beta2 * v + (1 - beta2) * g * g
//           p = p - step_size * m / (sqrt(v) / bc2_sqrt + eps)
//           step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t), computed in double on the host.
//           A parameter whose gradient stays zero (never used) stays unchanged: m = v = 0 gives 0 / eps.
// Tiling:   one element per invocation, 64 per workgroup.
// Dispatch: ceil(n / 64) workgroups, folded past 65,535.

// 1 - beta is passed rounded from double, as PyTorch's scalar arguments are.
struct Adam { n: u32, beta1: f32, beta2: f32, one_minus_beta1: f32, one_minus_beta2: f32, eps: f32, step_size: f32, bc2_sqrt: f32, clip: f32 }

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read_write> m: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<uniform> p: Adam;

// @include flat

@compute @workgroup_size(64)
fn step(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= p.n) { return; }
  var g = grad[i];
  if (p.clip > 0.0) { g = clamp(g, -p.clip, p.clip); }
  let mi = m[i] * p.beta1 + g * p.one_minus_beta1;
  let vi = v[i] * p.beta2 + p.one_minus_beta2 * g * g;
  m[i] = mi;
  v[i] = vi;
  param[i] = param[i] - p.step_size * (mi / (sqrt(vi) / p.bc2_sqrt + p.eps));
}
