// The package's `main` is a CommonJS build inside a `"type": "module"` package, so Node can only
// load its ES module build; that file has no declarations beside it, these are the same ones.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
