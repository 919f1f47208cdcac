import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const API = 'http://127.0.0.1:3000';
const proxied = ['/api', '/admin/api', '/healthz', '/readyz', '/docs', '/openapi.json'];

export default defineConfig({
  plugins: [react()],
  // Served by the API at `/`; absolute asset URLs so deep links (/admin/health) load them.
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // One small chunk budget warning is noise for an internal admin SPA.
    chunkSizeWarningLimit: 900,
  },
  server: {
    port: 5173,
    proxy: Object.fromEntries(proxied.map((p) => [p, { target: API, changeOrigin: false }])),
  },
});
