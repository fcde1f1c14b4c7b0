// What web/app.js imports as ./sisn-webgpu.js: the browser bundle that scripts/build-web.mjs writes
// beside it from src/web.ts. tsconfig.web.json's rootDirs put this folder beside web/, so the
// typecheck reads the bundle's declarations from dist/web.d.ts (`npm run build` writes them).
export * from '../../dist/web.js';
