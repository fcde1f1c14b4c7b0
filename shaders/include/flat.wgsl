// Shared helpers, included with `// @include flat` (shaders/include/ is not a kernel family).

// Flat index of an invocation in a 1-D dispatch of 64-lane workgroups that the host folded into
// (x, y) past the adapter's per-dimension limit.
fn flat(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 64u + lid;
}

// Writes v to vec4 i of an n-element array: all of it, or only the lanes below n in the last one
// (bindings are rounded up to 16 bytes; the slack past n is never written).
fn store4(dst: ptr<storage, array<vec4f>, read_write>, i: u32, n: u32, v: vec4f) {
  if (4u * i + 4u <= n) {
    (*dst)[i] = v;
  } else if (4u * i < n) {
    (*dst)[i] = select((*dst)[i], v, vec4u(0u, 1u, 2u, 3u) + 4u * i < vec4u(n));
  }
}
