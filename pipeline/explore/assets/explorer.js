// The drlim map explorer: WebGL points (2-D or 3-D), a 2-D overlay for what is picked, and the side panel.
// Self-contained: no library, nothing fetched but the page's own data (inline, or from `drlim view`).
(() => {
  "use strict";

  const TAB = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d",
    "#9edae5"];
  const SOURCE_COLOURS = { knn: "#1f77b4", prior: "#9467bd", transform: "#ff7f0e", transform_knn: "#2ca02c" };
  const INPUT_NB = "#d62728"; // rings: nearest in input space
  const MAP_NB = "#17becf"; // rings: nearest on the map
  const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]; // viridis stops
  const TYPES = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint8: Uint8Array,
    uint16: Uint16Array, uint32: Uint32Array };

  const api = (window.drlim = { ready: false, firstRenderMs: null, views: [], errors: [] });
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, text) => {
    const node = document.createElement(tag);
    Object.assign(node, attrs);
    if (text !== undefined) node.textContent = text;
    return node;
  };

  // ---- colours ------------------------------------------------------------------------------------------
  const hexRgb = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
  function categoryRgb(i) {
    if (i < TAB.length) return hexRgb(TAB[i]);
    const hue = (i * 137.508) % 360; // golden angle: distinct hues for many categories
    const c = 0.55, x = c * (1 - Math.abs(((hue / 60) % 2) - 1)), m = 0.3;
    const [r, g, b] = hue < 60 ? [c, x, 0] : hue < 120 ? [x, c, 0] : hue < 180 ? [0, c, x] : hue < 240 ? [0, x, c]
      : hue < 300 ? [x, 0, c] : [c, 0, x];
    return [r, g, b].map((v) => Math.round((v + m) * 255));
  }
  function rampRgb(t) {
    if (!(t >= 0)) return [170, 170, 170];
    const s = Math.min(t, 1) * (RAMP.length - 1), i = Math.min(Math.floor(s), RAMP.length - 2), f = s - i;
    return RAMP[i].map((v, j) => Math.round(v + (RAMP[i + 1][j] - v) * f));
  }
  const css = (rgb) => `rgb(${rgb.join(",")})`;

  // ---- data -----------------------------------------------------------------------------------------------
  function base64Bytes(text) {
    const raw = atob(text.trim());
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  const typed = (bytes, dtype) =>
    bytes && new TYPES[dtype](bytes.buffer, bytes.byteOffset, bytes.byteLength / TYPES[dtype].BYTES_PER_ELEMENT);

  async function loadDataset(spec, index) {
    let meta, blob;
    if (spec.inline) {
      meta = spec.meta;
      blob = async (name) => {
        const node = document.getElementById(`drlim-${index}-${name}`);
        return node ? base64Bytes(node.textContent) : null;
      };
    } else {
      const reply = await fetch(spec.url + "meta.json");
      if (!reply.ok) throw new Error(`${spec.url}meta.json: HTTP ${reply.status}`);
      meta = await reply.json();
      blob = async (name) => {
        const r = await fetch(spec.url + "blob/" + name);
        return r.ok ? new Uint8Array(await r.arrayBuffer()) : null;
      };
    }
    const [position, ids, ...columns] = await Promise.all(
      [blob("position"), blob("id"), ...meta.columns.map((c) => blob(c.blob))]);
    const ds = { index, meta, n: meta.n, dim: meta.dim, pos: typed(position, "float32"), ids: typed(ids, meta.id_dtype),
      columns: {}, partners: null, neighbours: null, sprite: null, byId: null };
    meta.columns.forEach((c, i) => (ds.columns[c.name] = Object.assign({}, c, { data: typed(columns[i], c.dtype) })));
    // What a click or a hover needs comes after the first picture.
    ds.extras = (async () => {
      if (meta.thumbnails) {
        const png = await blob("sprite");
        if (png) ds.sprite = URL.createObjectURL(new Blob([png], { type: "image/png" }));
      }
      if (meta.pairs) {
        const [rows, source, degree] = await Promise.all([blob("pairs"), blob("pair_source"), blob("degree")]);
        ds.partners = adjacency(ds.n, typed(rows, "int32"), source, typed(degree, "int32"));
      }
      if (meta.neighbours) ds.neighbours = typed(await blob("neighbours"), "int32");
    })();
    return ds;
  }

  // Every point's pairs on the page, as compressed rows: partners of i are at start[i] .. start[i + 1].
  function adjacency(n, rows, source, degree) {
    const start = new Uint32Array(n + 1);
    for (let k = 0; k < rows.length; k++) start[rows[k] + 1]++;
    for (let i = 0; i < n; i++) start[i + 1] += start[i];
    const fill = start.slice(0, n), other = new Int32Array(rows.length), kind = new Uint8Array(rows.length);
    for (let k = 0; k < rows.length; k += 2) {
      const a = rows[k], b = rows[k + 1], s = source[k >> 1];
      other[fill[a]] = b; kind[fill[a]++] = s;
      other[fill[b]] = a; kind[fill[b]++] = s;
    }
    return { start, other, kind, degree };
  }

  function rowOfId(ds, id) {
    if (!ds.byId) { // sorted once, on first use: a million ids sort in well under a second
      const order = new Uint32Array(ds.n).map((_, i) => i);
      ds.byId = order.sort((a, b) => ds.ids[a] - ds.ids[b]);
    }
    let lo = 0, hi = ds.n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1, v = ds.ids[ds.byId[mid]];
      if (v === id) return ds.byId[mid];
      if (v < id) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }

  // ---- matrices (column-major 4x4) ---------------------------------------------------------------------
  function mul(a, b) {
    const out = new Float32Array(16);
    for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      out[c * 4 + r] = s;
    }
    return out;
  }
  const perspective = (fov, aspect, near, far) => {
    const f = 1 / Math.tan(fov / 2), d = near - far;
    return new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / d, -1, 0, 0, (2 * far * near) / d, 0]);
  };
  const rotX = (t) => new Float32Array([1, 0, 0, 0, 0, Math.cos(t), Math.sin(t), 0, 0, -Math.sin(t), Math.cos(t), 0, 0, 0, 0, 1]);
  const rotY = (t) => new Float32Array([Math.cos(t), 0, -Math.sin(t), 0, 0, 1, 0, 0, Math.sin(t), 0, Math.cos(t), 0, 0, 0, 0, 1]);
  const affine = (sx, sy, sz, tx, ty, tz) => new Float32Array([sx, 0, 0, 0, 0, sy, 0, 0, 0, 0, sz, 0, tx, ty, tz, 1]);

  // ---- one map ------------------------------------------------------------------------------------------
  const VERTEX = `attribute vec3 a_pos; attribute vec4 a_col; uniform mat4 u_mat; uniform float u_size;
    varying vec4 v_col;
    void main() { gl_Position = u_mat * vec4(a_pos, 1.0); gl_PointSize = u_size; v_col = a_col; }`;
  const FRAGMENT = `precision mediump float; varying vec4 v_col;
    void main() { vec2 d = gl_PointCoord - 0.5; if (dot(d, d) > 0.25) discard; gl_FragColor = v_col; }`;

  class MapView {
    constructor(app, ds) {
      this.app = app; this.ds = ds;
      this.panel = el("div", { className: "panel" });
      this.panel.append(el("h2", {}, ds.meta.title || ""));
      this.canvas = el("canvas", { className: "gl" });
      this.overlay = el("canvas", { className: "overlay" });
      this.panel.append(this.canvas, this.overlay);
      $("maps").append(this.panel);
      const gl = this.canvas.getContext("webgl", { antialias: false, alpha: false, preserveDrawingBuffer: true });
      if (!gl) throw new Error("this browser has no WebGL: the map cannot be drawn");
      this.gl = gl;
      const program = gl.createProgram();
      for (const [type, source] of [[gl.VERTEX_SHADER, VERTEX], [gl.FRAGMENT_SHADER, FRAGMENT]]) {
        const shader = gl.createShader(type);
        gl.shaderSource(shader, source);
        gl.compileShader(shader);
        gl.attachShader(program, shader);
      }
      gl.linkProgram(program);
      gl.useProgram(program);
      this.loc = { pos: gl.getAttribLocation(program, "a_pos"), col: gl.getAttribLocation(program, "a_col"),
        mat: gl.getUniformLocation(program, "u_mat"), size: gl.getUniformLocation(program, "u_size") };
      this.posBuffer = gl.createBuffer();
      gl.bindBuffer(gl.ARRAY_BUFFER, this.posBuffer);
      gl.bufferData(gl.ARRAY_BUFFER, ds.pos, gl.STATIC_DRAW);
      this.colBuffer = gl.createBuffer();
      this.colours = new Uint8Array(ds.n * 4);
      this.visible = new Uint8Array(ds.n).fill(1);
      gl.enable(gl.BLEND);
      gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
      this.extent = this.bounds(false);
      this.frame = this.bounds(true);
      this.occupied = this.occupiedFraction();
      this.fit(this.frame);
      this.hover = -1;
      this.listen();
      new ResizeObserver(() => this.draw()).observe(this.panel);
    }

    bounds(robust) { // [[min, max] per axis]: robust = the quantiles the page was built with
      const { ds } = this;
      if (robust && ds.meta.frame) return ds.meta.frame;
      const out = [];
      for (let a = 0; a < ds.dim; a++) {
        let lo = Infinity, hi = -Infinity;
        for (let i = a; i < ds.pos.length; i += ds.dim) { const v = ds.pos[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
        out.push(lo <= hi ? [lo, hi] : [0, 1]);
      }
      return out;
    }

    occupiedFraction() { // of a 64 x 64 grid over the frame: point size and alpha follow the density
      const { ds, frame } = this, g = 64, hit = new Uint8Array(g * g);
      const sx = g / (frame[0][1] - frame[0][0] || 1), sy = g / (frame[1][1] - frame[1][0] || 1);
      const step = Math.max(1, Math.floor(ds.n / 200000));
      for (let i = 0; i < ds.n; i += step) {
        const x = Math.floor((ds.pos[i * ds.dim] - frame[0][0]) * sx), y = Math.floor((ds.pos[i * ds.dim + 1] - frame[1][0]) * sy);
        if (x >= 0 && x < g && y >= 0 && y < g) hit[y * g + x] = 1;
      }
      return Math.max(hit.reduce((s, v) => s + v, 0) / (g * g), 0.02);
    }

    fit(box) {
      const centre = box.map(([lo, hi]) => (lo + hi) / 2), span = box.map(([lo, hi]) => hi - lo || 1);
      this.view = { cx: centre[0], cy: centre[1], span: Math.max(span[0], span[1]) * 1.08, zoom: 1,
        centre, radius: Math.max(...span) / 2, yaw: 0.6, pitch: 0.35, box };
    }

    size() {
      const dpr = window.devicePixelRatio || 1, w = this.panel.clientWidth, h = this.panel.clientHeight;
      for (const c of [this.canvas, this.overlay]) {
        if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
          c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
        }
      }
      return { w, h, dpr };
    }

    matrix(w, h) {
      const v = this.view;
      if (this.ds.dim === 2) {
        const scale = (Math.min(w, h) / v.span) * v.zoom; // pixels per unit
        const sx = (2 * scale) / w, sy = (2 * scale) / h;
        return affine(sx, sy, 1, -v.cx * sx, -v.cy * sy, 0);
      }
      const r = v.radius || 1;
      const model = affine(1 / r, 1 / r, 1 / r, -v.centre[0] / r, -v.centre[1] / r, -v.centre[2] / r);
      const eye = mul(affine(1, 1, 1, 0, 0, -3.2 / v.zoom), mul(rotX(v.pitch), rotY(v.yaw)));
      return mul(perspective(0.8, w / h, 0.05, 50), mul(eye, model));
    }

    pointSize(w, h) { // screen area per point where points lie, from the density: small and faint when crowded
      const visible = Math.max(1, this.app.visibleCount(this));
      const area = (this.occupied * w * h * this.view.zoom * this.view.zoom) / visible;
      const size = Math.min(Math.max(0.8 * Math.sqrt(area), this.ds.dim === 3 ? 3 : 2), 9);
      return { size, alpha: Math.min(Math.max((1.5 * area) / (size * size), 0.12), 0.9) };
    }

    recolour() { // per-point colours and visibility from the colouring column, the legend and the label filter
      const { app, ds } = this, column = ds.columns[app.colourBy], labels = ds.columns.label;
      const { alpha } = this.pointSize(this.panel.clientWidth || 1, this.panel.clientHeight || 1);
      const a = Math.round(alpha * 255), c = this.colours, visible = this.visible;
      let allowed = null; // by label code
      if (app.labelFilter && labels) allowed = Uint8Array.from(labels.values, (v) => (app.labelFilter.has(v) ? 1 : 0));
      const category = column && column.kind === "category";
      // A lookup table: category code -> colour, or 256 steps of the ramp.
      const steps = category ? column.values.length : 256, table = new Uint8Array(steps * 3), shown = new Uint8Array(steps);
      for (let k = 0; k < steps; k++) {
        table.set(category ? categoryRgb(k) : column ? rampRgb(k / 255) : [110, 110, 110], k * 3);
        shown[k] = category && app.hidden.has(column.values[k]) ? 0 : 1;
      }
      const data = column && column.data, low = column && column.min, span = column ? column.max - column.min || 1 : 1;
      for (let i = 0; i < ds.n; i++) {
        let k = 0;
        if (category) k = data[i];
        else if (column) { const t = (data[i] - low) / span; k = t >= 0 ? Math.min(255, Math.round(t * 255)) : 0; }
        const show = shown[k] && (!allowed || allowed[labels.data[i]]);
        visible[i] = show;
        c[i * 4] = table[k * 3]; c[i * 4 + 1] = table[k * 3 + 1]; c[i * 4 + 2] = table[k * 3 + 2];
        c[i * 4 + 3] = show ? a : 0;
      }
      this.alpha = alpha;
      const gl = this.gl;
      gl.bindBuffer(gl.ARRAY_BUFFER, this.colBuffer);
      gl.bufferData(gl.ARRAY_BUFFER, c, gl.DYNAMIC_DRAW);
    }

    draw() {
      const { gl, ds, loc } = this, { w, h, dpr } = this.size();
      if (!w || !h) return;
      const { size, alpha } = this.pointSize(w, h);
      if (Math.abs(alpha - this.alpha) > 0.05) this.recolour(); // zoomed far enough to change the density
      this.mat = this.matrix(w, h);
      gl.viewport(0, 0, this.canvas.width, this.canvas.height);
      gl.clearColor(1, 1, 1, 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      if (ds.dim === 3) gl.enable(gl.DEPTH_TEST); else gl.disable(gl.DEPTH_TEST);
      gl.uniformMatrix4fv(loc.mat, false, this.mat);
      gl.uniform1f(loc.size, size * dpr);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.posBuffer);
      gl.enableVertexAttribArray(loc.pos);
      gl.vertexAttribPointer(loc.pos, ds.dim, gl.FLOAT, false, 0, 0);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.colBuffer);
      gl.enableVertexAttribArray(loc.col);
      gl.vertexAttribPointer(loc.col, 4, gl.UNSIGNED_BYTE, true, 0, 0);
      gl.drawArrays(gl.POINTS, 0, ds.n);
      this.drawOverlay();
    }

    // Where row i lands on this canvas, in CSS pixels (null: behind the camera).
    screen(i) {
      const m = this.mat, p = this.ds.pos, d = this.ds.dim, x = p[i * d], y = p[i * d + 1], z = d === 3 ? p[i * d + 2] : 0;
      const cw = m[3] * x + m[7] * y + m[11] * z + m[15];
      if (cw <= 0) return null;
      const cx = (m[0] * x + m[4] * y + m[8] * z + m[12]) / cw, cy = (m[1] * x + m[5] * y + m[9] * z + m[13]) / cw;
      return [((cx + 1) / 2) * this.panel.clientWidth, ((1 - cy) / 2) * this.panel.clientHeight];
    }

    pick(sx, sy) { // the visible point nearest to (sx, sy) within a few pixels, or -1
      const radius = Math.max(6, this.pointSize(this.panel.clientWidth, this.panel.clientHeight).size);
      if (this.ds.dim === 3) return this.pickProjected(sx, sy, radius);
      if (!this.grid) this.grid = this.buildGrid();
      const g = this.grid, v = this.view;
      const scale = (Math.min(this.panel.clientWidth, this.panel.clientHeight) / v.span) * v.zoom;
      const x = v.cx + (sx - this.panel.clientWidth / 2) / scale, y = v.cy - (sy - this.panel.clientHeight / 2) / scale;
      const r = radius / scale, p = this.ds.pos;
      const x0 = Math.max(0, Math.floor((x - r - g.x0) / g.cell)), x1 = Math.min(g.side - 1, Math.floor((x + r - g.x0) / g.cell));
      const y0 = Math.max(0, Math.floor((y - r - g.y0) / g.cell)), y1 = Math.min(g.side - 1, Math.floor((y + r - g.y0) / g.cell));
      let best = -1, bestD = r * r;
      for (let cy = y0; cy <= y1; cy++) for (let cx = x0; cx <= x1; cx++) {
        const cell = cy * g.side + cx;
        for (let k = g.start[cell]; k < g.start[cell + 1]; k++) {
          const i = g.items[k], dx = p[2 * i] - x, dy = p[2 * i + 1] - y, dd = dx * dx + dy * dy;
          if (dd <= bestD && this.visible[i]) { best = i; bestD = dd; }
        }
      }
      return best;
    }

    buildGrid() { // visible points bucketed by a square grid over the data: hover costs a few cells, not n points
      const { ds } = this, [[xa, xb], [ya, yb]] = this.extent;
      const side = Math.max(1, Math.min(2048, Math.ceil(Math.sqrt(ds.n / 4))));
      const cell = Math.max(xb - xa, yb - ya, 1e-9) / side * 1.0001;
      const cellOf = new Uint32Array(ds.n), start = new Uint32Array(side * side + 1);
      for (let i = 0; i < ds.n; i++) {
        const c = Math.floor((ds.pos[2 * i + 1] - ya) / cell) * side + Math.floor((ds.pos[2 * i] - xa) / cell);
        cellOf[i] = c; start[c + 1]++;
      }
      for (let c = 0; c < side * side; c++) start[c + 1] += start[c];
      const fill = start.slice(0, side * side), items = new Uint32Array(ds.n);
      for (let i = 0; i < ds.n; i++) items[fill[cellOf[i]]++] = i;
      return { x0: xa, y0: ya, cell, side, start, items };
    }

    pickProjected(sx, sy, radius) {
      let best = -1, bestD = radius * radius;
      const limit = Math.min(this.ds.n, 300000); // beyond that a 3-D hover would stall the page
      for (let i = 0; i < limit; i++) {
        if (!this.visible[i]) continue;
        const s = this.screen(i);
        if (!s) continue;
        const dd = (s[0] - sx) ** 2 + (s[1] - sy) ** 2;
        if (dd <= bestD) { best = i; bestD = dd; }
      }
      return best;
    }

    drawOverlay() {
      const ctx = this.overlay.getContext("2d"), dpr = window.devicePixelRatio || 1;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
      const ring = (i, radius, colour, width = 2) => {
        const s = this.screen(i);
        if (!s) return;
        ctx.beginPath(); ctx.arc(s[0], s[1], radius, 0, 2 * Math.PI);
        ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.stroke();
      };
      const sel = this.app.selectedId === null ? -1 : rowOfId(this.ds, this.app.selectedId);
      if (sel >= 0) {
        const from = this.screen(sel), adj = this.ds.partners;
        if (adj && from) {
          ctx.lineWidth = 1.5;
          for (let k = adj.start[sel]; k < adj.start[sel + 1]; k++) {
            const to = this.screen(adj.other[k]);
            if (!to) continue;
            ctx.strokeStyle = SOURCE_COLOURS[this.ds.meta.pairs.sources[adj.kind[k]]] || "#000";
            ctx.beginPath(); ctx.moveTo(from[0], from[1]); ctx.lineTo(to[0], to[1]); ctx.stroke();
          }
        }
        const near = this.app.neighboursOf(this, sel);
        if (near) {
          near.input.forEach((i) => ring(i, 5, INPUT_NB));
          near.map.forEach((i) => ring(i, 8, MAP_NB, 1.5));
        }
        ring(sel, 9, "#000", 2.5);
      }
      const hov = this.app.hoverId === null ? -1 : rowOfId(this.ds, this.app.hoverId);
      if (hov >= 0) ring(hov, 7, "#333", 1.5);
    }

    listen() {
      const c = this.canvas;
      let down = null, moved = false;
      const local = (e) => { const r = c.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
      c.addEventListener("pointerdown", (e) => { down = local(e); moved = false; c.setPointerCapture(e.pointerId); });
      c.addEventListener("pointerup", (e) => {
        c.releasePointerCapture(e.pointerId);
        if (down && !moved) this.app.select(this, this.pick(...local(e)));
        down = null;
      });
      c.addEventListener("pointermove", (e) => {
        const [x, y] = local(e);
        if (down && (moved || Math.abs(x - down[0]) + Math.abs(y - down[1]) > 3)) {
          const dx = x - down[0], dy = y - down[1], v = this.view;
          moved = true; down = [x, y];
          if (this.ds.dim === 3) { v.yaw += dx * 0.01; v.pitch = Math.max(-1.55, Math.min(1.55, v.pitch + dy * 0.01)); }
          else {
            const scale = (Math.min(this.panel.clientWidth, this.panel.clientHeight) / v.span) * v.zoom;
            v.cx -= dx / scale; v.cy += dy / scale;
          }
          this.app.hoverAt(this, -1, e);
          this.draw();
          return;
        }
        this.app.hoverAt(this, this.pick(x, y), e);
      });
      c.addEventListener("pointerleave", (e) => this.app.hoverAt(this, -1, e));
      c.addEventListener("wheel", (e) => {
        e.preventDefault();
        const v = this.view, factor = Math.exp(-e.deltaY * 0.0015), [x, y] = local(e);
        if (this.ds.dim === 2) { // keep the point under the cursor where it is
          const before = (Math.min(this.panel.clientWidth, this.panel.clientHeight) / v.span) * v.zoom;
          const after = before * factor, ox = x - this.panel.clientWidth / 2, oy = y - this.panel.clientHeight / 2;
          v.cx += ox / before - ox / after; v.cy -= oy / before - oy / after;
        }
        v.zoom *= factor;
        this.draw();
      }, { passive: false });
      c.addEventListener("dblclick", () => {
        this.fit(this.view.box === this.extent ? this.frame : this.extent);
        this.draw();
      });
    }
  }

  // ---- the page: every map, the side panel ------------------------------------------------------------
  class App {
    constructor(datasets) {
      this.datasets = datasets;
      this.selectedId = null; this.hoverId = null; this.hidden = new Set(); this.labelFilter = null;
      const names = [];
      datasets.forEach((ds) => ds.meta.columns.forEach((c) => names.includes(c.name) || names.push(c.name)));
      const select = $("colour");
      names.forEach((name) => select.append(el("option", { value: name }, name)));
      const first = datasets[0].meta.columns;
      const varied = first.find((c) => c.kind === "number" || c.values.length > 1);
      this.colourBy = varied ? varied.name : names[0] || "";
      select.value = this.colourBy;
      select.addEventListener("change", () => this.setColour(select.value));
      $("filter").addEventListener("input", (e) => this.setLabelFilter(e.target.value));
      $("find").addEventListener("change", (e) => this.find(e.target.value));
      this.views = datasets.map((ds) => new MapView(this, ds));
      api.views = this.views;
    }

    visibleCount(view) { return view.visibleCount === undefined ? view.ds.n : view.visibleCount; }

    refresh() {
      for (const v of this.views) {
        v.recolour();
        v.visibleCount = v.visible.reduce((s, x) => s + x, 0);
        v.draw();
      }
      this.legend();
    }

    setColour(name) { this.colourBy = name; this.hidden.clear(); $("colour").value = name; this.refresh(); }

    setLabelFilter(text) {
      const wanted = text.split(/[\s,]+/).filter(Boolean);
      this.labelFilter = wanted.length ? new Set(wanted) : null;
      this.refresh();
    }

    toggle(value) { if (!this.hidden.delete(value)) this.hidden.add(value); this.refresh(); }

    legend() {
      const box = $("legend");
      box.replaceChildren(el("h3", {}, `colour: ${this.colourBy}`));
      const column = this.views.map((v) => v.ds.columns[this.colourBy]).find(Boolean);
      if (!column) return;
      if (column.kind === "number") {
        const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => css(rampRgb(t))).join(",");
        box.append(el("div", { className: "ramp", style: `background: linear-gradient(to right, ${stops})` }));
        const ends = el("div", { className: "ramp-ends" });
        ends.append(el("span", {}, column.min.toPrecision(4)), el("span", {}, column.max.toPrecision(4)));
        box.append(ends);
        return;
      }
      const counts = new Uint32Array(column.values.length);
      for (let i = 0; i < column.data.length; i++) counts[column.data[i]]++;
      const list = el("ul");
      column.values.forEach((value, i) => {
        const item = el("li", { className: this.hidden.has(value) ? "off" : "", title: "click to hide or show" });
        item.dataset.value = value;
        item.append(el("span", { className: "swatch", style: `background:${css(categoryRgb(i))}` }), `${value} (${counts[i]})`);
        item.addEventListener("click", () => this.toggle(value));
        list.append(item);
      });
      box.append(list);
    }

    // Thumbnail i of ds (or of the same sample in another map of this page), as an element `scale` times its size.
    thumb(ds, row, scale) {
      let src = ds, i = row;
      if (!src.sprite) {
        src = this.datasets.find((d) => d.sprite && rowOfId(d, ds.ids[row]) >= 0);
        if (!src) return null;
        i = rowOfId(src, ds.ids[row]);
      }
      const t = src.meta.thumbnails, per = t.per_row;
      const node = el("span", { className: "thumb" });
      node.style.width = `${t.width * scale}px`; node.style.height = `${t.height * scale}px`;
      node.style.backgroundImage = `url(${src.sprite})`;
      node.style.backgroundSize = `${per * t.width * scale}px auto`;
      node.style.backgroundPosition = `-${(i % per) * t.width * scale}px -${Math.floor(i / per) * t.height * scale}px`;
      return node;
    }

    describe(ds, i) { // the sample's fields, as [name, value]
      const out = [["id", String(ds.ids[i])]];
      for (const c of ds.meta.columns) {
        const v = ds.columns[c.name].data[i];
        out.push([c.name, c.kind === "category" ? c.values[v] : String(+v.toPrecision(6))]);
      }
      return out;
    }

    hoverAt(view, row, event) {
      const id = row >= 0 ? view.ds.ids[row] : null;
      const tip = $("tooltip");
      if (id !== this.hoverId) {
        this.hoverId = id;
        this.views.forEach((v) => v.drawOverlay());
        if (row >= 0) {
          tip.replaceChildren();
          const image = this.thumb(view.ds, row, 3);
          if (image) tip.append(image);
          tip.append(el("div", {}, this.describe(view.ds, row).map(([k, v]) => `${k} ${v}`).join(" · ")));
        }
      }
      tip.hidden = row < 0;
      if (row >= 0) { tip.style.left = `${event.clientX + 14}px`; tip.style.top = `${event.clientY + 14}px`; }
    }

    select(view, row) {
      this.selectedId = row >= 0 ? view.ds.ids[row] : null;
      this.views.forEach((v) => v.drawOverlay());
      this.details();
    }

    find(text) {
      const id = Number(text);
      const hit = this.views.find((v) => rowOfId(v.ds, id) >= 0);
      if (!hit) { $("status").textContent = `no sample with id ${text}`; return; }
      this.selectedId = id;
      for (const v of this.views) {
        const i = rowOfId(v.ds, id);
        if (i >= 0 && v.ds.dim === 2) { v.view.cx = v.ds.pos[2 * i]; v.view.cy = v.ds.pos[2 * i + 1]; }
        v.draw();
      }
      this.details();
    }

    // The selected row's k nearest in input space (from the page) and on the map (computed here), same split.
    neighboursOf(view, row) {
      const ds = view.ds;
      if (!ds.neighbours) return null;
      const k = ds.meta.neighbours.k, input = [];
      for (let j = 0; j < k; j++) { const r = ds.neighbours[row * k + j]; if (r >= 0) input.push(r); }
      if (!input.length) return null;
      if (view.nearCache && view.nearCache.row === row) return view.nearCache;
      const split = ds.columns.split, d = ds.dim, p = ds.pos, best = [];
      for (let i = 0; i < ds.n; i++) {
        if (i === row || (split && split.data[i] !== split.data[row])) continue;
        let dd = 0;
        for (let a = 0; a < d; a++) dd += (p[i * d + a] - p[row * d + a]) ** 2;
        if (best.length < k || dd < best[best.length - 1][0]) {
          best.push([dd, i]); best.sort((x, y) => x[0] - y[0]);
          if (best.length > k) best.pop();
        }
      }
      view.nearCache = { row, input, map: best.map(([, i]) => i) };
      return view.nearCache;
    }

    details() {
      const box = $("details");
      box.replaceChildren();
      if (this.selectedId === null) return;
      for (const view of this.views) {
        const ds = view.ds, row = rowOfId(ds, this.selectedId);
        if (row < 0) continue;
        const head = el("h3", {}, this.views.length > 1 ? ds.meta.title : `sample ${ds.ids[row]}`);
        box.append(head);
        const image = this.thumb(ds, row, 4);
        if (image) box.append(image);
        const table = el("table", { className: "fields" });
        for (const [k, v] of this.describe(ds, row)) {
          const tr = el("tr"); tr.append(el("td", {}, k), el("td", {}, v)); table.append(tr);
        }
        box.append(table);
        const adj = ds.partners;
        if (ds.meta.pairs) {
          const pairs = el("div", { className: "pairs" });
          const degree = adj ? adj.degree[row] : -1, drawn = adj ? adj.start[row + 1] - adj.start[row] : 0;
          if (degree < 0) pairs.append(el("p", { className: "note" }, "Not in the pair set (held-out samples are never paired)."));
          else {
            const bySource = {};
            for (let k = adj.start[row]; k < adj.start[row + 1]; k++) {
              const s = ds.meta.pairs.sources[adj.kind[k]]; bySource[s] = (bySource[s] || 0) + 1;
            }
            pairs.append(el("p", {}, `Similar pairs: ${degree} in the pair set, ${drawn} drawn` +
              (drawn < degree ? " (the other partners are not on this page)" : "")));
            for (const [s, count] of Object.entries(bySource)) {
              const line = el("div");
              line.append(el("span", { className: "swatch", style: `background:${SOURCE_COLOURS[s] || "#000"}` }), `${s}: ${count}`);
              pairs.append(line);
            }
            const strip = el("div", { className: "nbs" }); // the partners, framed in their source's colour
            for (let k = adj.start[row]; k < Math.min(adj.start[row + 1], adj.start[row] + 40); k++) {
              const image = this.thumb(ds, adj.other[k], 1.5);
              if (!image) continue;
              const source = ds.meta.pairs.sources[adj.kind[k]];
              image.style.border = `2px solid ${SOURCE_COLOURS[source] || "#000"}`;
              image.title = `id ${ds.ids[adj.other[k]]} (${source})`;
              strip.append(image);
            }
            pairs.append(strip);
          }
          box.append(pairs);
        }
        const near = this.neighboursOf(view, row);
        if (near) {
          const both = near.input.filter((i) => near.map.includes(i));
          const text = `${both.length} of its ${near.input.length} nearest in input space are among its ` +
            `${near.map.length} nearest on the map (red rings: input space; blue: map).`;
          box.append(el("p", { className: "neighbours" }, text));
          const strip = el("div", { className: "nbs" });
          for (const i of near.input) {
            const image = this.thumb(ds, i, 1.5);
            if (!image) continue;
            if (near.map.includes(i)) image.classList.add("both");
            image.title = `id ${ds.ids[i]}` + (near.map.includes(i) ? " (also near on the map)" : "");
            strip.append(image);
          }
          box.append(strip);
        }
      }
    }
  }

  async function start() {
    const config = JSON.parse($("drlim-config").textContent);
    const datasets = await Promise.all(config.datasets.map(loadDataset));
    const app = new App(datasets);
    api.app = app;
    app.refresh();
    // The first picture counts once the browser has shown it: two animation frames after it was drawn.
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    api.firstRenderMs = performance.now();
    const n = datasets.reduce((s, d) => s + d.n, 0);
    $("status").textContent = `${n.toLocaleString("en")} points` + (datasets.length > 1 ? " in 2 maps, linked by sample id" : "");
    await Promise.all(datasets.map((d) => d.extras));
    api.ready = true;
    document.body.dataset.ready = "1";
  }

  // For tests and the console: where a sample is drawn (page coordinates), and the picked ids.
  api.screenOf = (mapIndex, id) => {
    const v = api.views[mapIndex], i = rowOfId(v.ds, id), s = v.screen(i), r = v.canvas.getBoundingClientRect();
    return s && [r.left + s[0], r.top + s[1]];
  };
  api.selected = () => api.app && api.app.selectedId;

  window.addEventListener("error", (e) => api.errors.push(String(e.message)));
  start().catch((err) => {
    api.errors.push(String(err));
    $("status").textContent = `could not draw the map: ${err.message || err}`;
    console.error(err);
  });
})();
