// The compare view: bicubic and SISN over the same region of the result, split by a before/after
// line, drawn at whole-pixel (nearest) zoom, one image pixel to 1, 2, 3... device pixels, so what
// SISN adds is seen as it is; and the LR input beside it, with a box around the region shown.
// Pan and zoom with the mouse (drag, wheel), touch (one finger pans, two pinch) and the keyboard
// (arrows pan, + and - zoom, 1 real pixels, 0 fit, [ and ] move the line); the slider moves the
// line too. The state is mirrored in data attributes of the viewport (for tests and styling).

const ZOOMS = [1, 2, 3, 4, 6, 8, 12, 16];
/** How close (CSS pixels) to the line a drag must start to move the line instead of panning. */
const LINE_GRAB = 12;
/** Device pixels an arrow key pans by. */
const KEY_PAN = 48;
/** The LR panel's width in CSS pixels, which its whole-pixel zoom fills as far as it can. */
const LR_PANEL = 320;

/**
 * @typedef {{ viewport: HTMLElement, canvas: HTMLCanvasElement, lrCanvas: HTMLCanvasElement,
 *   slider: HTMLInputElement, zoomText: HTMLElement, lrZoomText: HTMLElement, zoomIn: HTMLElement,
 *   zoomOut: HTMLElement, zoomReal: HTMLElement, zoomFit: HTMLElement }} CompareElements
 * @typedef {{ lr: HTMLCanvasElement, bicubic: HTMLCanvasElement, sisn: HTMLCanvasElement, scale: number }} Shown
 * @typedef {{ x: number, y: number }} Point
 * @typedef {{ kind: 'line' } | { kind: 'pan' } | { kind: 'pinch', zoom: number, distance: number, mid: Point }} Gesture
 */

/**
 * An RGB(A) image as a canvas of its own size, to draw from.
 * @param {{ width: number, height: number, channels: number, data: ArrayLike<number> }} image
 */
export function imageCanvas(image, canvas = document.createElement('canvas')) {
  const { width, height, channels, data } = image;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) rgba[4 * i + c] = data[channels * i + c];
    rgba[4 * i + 3] = channels === 4 ? data[4 * i + 3] : 255;
  }
  canvas.width = width;
  canvas.height = height;
  /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d')).putImageData(
    new ImageData(rgba, width, height),
    0,
    0,
  );
  return canvas;
}

export class CompareView {
  /**
   * `elements`: the viewport (a focusable box holding the canvas), its canvas, the LR canvas, the
   * slider, the zoom readouts and the zoom buttons.
   * @param {CompareElements} elements
   */
  constructor(elements) {
    this.el = elements;
    this.zoom = 1;
    this.center = { x: 0, y: 0 };
    this.split = 0.5;
    /** @type {Map<number, Point>} */
    this.pointers = new Map();
    /** @type {Gesture | null} */
    this.gesture = null;
    /** @type {number | null} */
    this.lrPointer = null;
    /** @type {Shown | null} */
    this.images = null;
    new ResizeObserver(() => this.render()).observe(elements.viewport);
    this.listen();
  }

  /**
   * Shows a new result: the LR input, its bicubic and SISN upscalings (canvases), at the fitting zoom.
   * @param {HTMLCanvasElement} lr
   * @param {HTMLCanvasElement} bicubic
   * @param {HTMLCanvasElement} sisn
   * @param {number} scale
   */
  show(lr, bicubic, sisn, scale) {
    this.images = { lr, bicubic, sisn, scale };
    this.center = { x: sisn.width / 2, y: sisn.height / 2 };
    this.zoom = this.fitZoom();
    this.render();
  }

  get dpr() {
    return window.devicePixelRatio || 1;
  }

  /** The largest whole zoom at which the whole result fits the viewport (at least 1: real pixels). */
  fitZoom() {
    const { viewport } = this.el;
    const { width, height } = /** @type {Shown} */ (this.images).sisn;
    const fit = Math.min((viewport.clientWidth * this.dpr) / width, (viewport.clientHeight * this.dpr) / height);
    return ZOOMS.filter((z) => z <= fit).pop() ?? 1;
  }

  /**
   * Sets the zoom, keeping the image point under the canvas point (px, py) where it is (default: the centre).
   * @param {number} zoom
   * @param {number} [px]
   * @param {number} [py]
   */
  zoomTo(zoom, px, py) {
    if (!this.images) return;
    const next = Math.min(ZOOMS[ZOOMS.length - 1], Math.max(1, Math.round(zoom)));
    const { width, height } = this.el.canvas;
    const [ox, oy] = [(px ?? width / 2) - width / 2, (py ?? height / 2) - height / 2];
    const at = { x: this.center.x + ox / this.zoom, y: this.center.y + oy / this.zoom };
    this.zoom = next;
    this.center = { x: at.x - ox / next, y: at.y - oy / next };
    this.render();
  }

  /**
   * The next zoom step in `direction` (+1 in, -1 out).
   * @param {number} direction
   */
  step(direction) {
    const i = ZOOMS.indexOf(this.zoom);
    const steps = i >= 0 ? ZOOMS : [...ZOOMS, this.zoom].sort((a, b) => a - b);
    const k = steps.indexOf(this.zoom) + direction;
    return steps[Math.min(steps.length - 1, Math.max(0, k))];
  }

  /**
   * Moves the view by (dx, dy) device pixels.
   * @param {number} dx
   * @param {number} dy
   */
  pan(dx, dy) {
    this.center = { x: this.center.x - dx / this.zoom, y: this.center.y - dy / this.zoom };
    this.render();
  }

  /** @param {number} fraction */
  setSplit(fraction) {
    this.split = Math.min(1, Math.max(0, fraction));
    this.el.slider.value = String(Math.round(this.split * Number(this.el.slider.max)));
    this.render();
  }

  /**
   * Keeps the result on screen: centred along an axis where it fits, else no edge past the viewport's.
   * @param {number} width
   * @param {number} height
   */
  clampCenter(width, height) {
    const { sisn } = /** @type {Shown} */ (this.images);
    const half = { x: width / 2 / this.zoom, y: height / 2 / this.zoom };
    const clamp = (/** @type {number} */ v, /** @type {number} */ size, /** @type {number} */ h) =>
      size <= 2 * h ? size / 2 : Math.min(size - h, Math.max(h, v));
    this.center = { x: clamp(this.center.x, sisn.width, half.x), y: clamp(this.center.y, sisn.height, half.y) };
  }

  render() {
    if (!this.images) return;
    const { viewport, canvas } = this.el;
    const width = Math.round(viewport.clientWidth * this.dpr);
    const height = Math.round(viewport.clientHeight * this.dpr);
    if (canvas.width !== width || canvas.height !== height) [canvas.width, canvas.height] = [width, height];
    canvas.style.width = `${width / this.dpr}px`;
    canvas.style.height = `${height / this.dpr}px`;
    this.clampCenter(width, height);
    const z = this.zoom;
    // Whole device pixels for the image's origin: every image pixel covers exactly z x z of them.
    const left = Math.round(width / 2 - this.center.x * z);
    const top = Math.round(height / 2 - this.center.y * z);
    const line = Math.round(this.split * width);
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
    ctx.imageSmoothingEnabled = false;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#e8e8ec';
    ctx.fillRect(0, 0, width, height);
    ctx.setTransform(z, 0, 0, z, left, top);
    ctx.drawImage(this.images.sisn, 0, 0);
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.beginPath();
    ctx.rect(0, 0, line, height);
    ctx.clip();
    ctx.setTransform(z, 0, 0, z, left, top);
    ctx.drawImage(this.images.bicubic, 0, 0);
    ctx.restore();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (line > 0 && line < width) {
      ctx.fillStyle = 'rgba(0, 0, 0, 0.5)';
      ctx.fillRect(line - 2 * this.dpr, 0, 4 * this.dpr, height);
      ctx.fillStyle = '#fff';
      ctx.fillRect(line - this.dpr, 0, 2 * this.dpr, height);
    }
    this.el.zoomText.textContent = z === 1 ? '1x (real pixels)' : `${z}x`;
    Object.assign(viewport.dataset, {
      zoom: String(z),
      split: this.split.toFixed(3),
      left: String(left),
      top: String(top),
    });
    this.renderLr(left, top, width, height);
  }

  /**
   * The LR input at the whole zoom that fills the LR panel best, with the region the viewport shows.
   * @param {number} left
   * @param {number} top
   * @param {number} width
   * @param {number} height
   */
  renderLr(left, top, width, height) {
    const { lr, scale } = /** @type {Shown} */ (this.images);
    const canvas = this.el.lrCanvas;
    const k = Math.max(1, Math.floor((LR_PANEL * this.dpr) / lr.width));
    this.lrZoom = k;
    if (canvas.width !== lr.width * k || canvas.height !== lr.height * k)
      [canvas.width, canvas.height] = [lr.width * k, lr.height * k];
    canvas.style.width = `${canvas.width / this.dpr}px`;
    canvas.style.height = `${canvas.height / this.dpr}px`;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
    ctx.imageSmoothingEnabled = false;
    ctx.setTransform(k, 0, 0, k, 0, 0);
    ctx.drawImage(lr, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    // The viewport's region in LR pixels, then in the panel's.
    const f = k / (scale * this.zoom);
    /** @type {[number, number, number, number]} */
    const box = [-left * f, -top * f, width * f, height * f];
    ctx.lineWidth = 2 * this.dpr;
    ctx.strokeStyle = 'rgba(0, 0, 0, 0.6)';
    ctx.strokeRect(...box);
    ctx.setLineDash([4 * this.dpr, 4 * this.dpr]);
    ctx.strokeStyle = '#ffd400';
    ctx.strokeRect(...box);
    ctx.setLineDash([]);
    this.el.lrZoomText.textContent = `${k}x`;
  }

  /**
   * Canvas (device pixel) coordinates of a pointer or mouse event.
   * @param {MouseEvent} event
   * @param {HTMLCanvasElement} [canvas]
   * @returns {Point}
   */
  at(event, canvas = this.el.canvas) {
    const r = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - r.left) * canvas.width) / r.width,
      y: ((event.clientY - r.top) * canvas.height) / r.height,
    };
  }

  listen() {
    const { viewport, canvas, lrCanvas, slider } = this.el;
    canvas.addEventListener('pointerdown', (e) => {
      if (!this.images) return;
      // Touch and pen pointers are captured by the element they land on already; a mouse needs it
      // to keep panning when it leaves the canvas.
      if (e.pointerType === 'mouse') canvas.setPointerCapture(e.pointerId);
      this.pointers.set(e.pointerId, this.at(e));
      viewport.focus({ preventScroll: true });
      this.startGesture();
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!this.pointers.has(e.pointerId) || !this.gesture) return;
      const before = /** @type {Point} */ (this.pointers.get(e.pointerId));
      const now = this.at(e);
      this.pointers.set(e.pointerId, now);
      const g = this.gesture;
      if (g.kind === 'line') this.setSplit(now.x / canvas.width);
      else if (g.kind === 'pan') this.pan(now.x - before.x, now.y - before.y);
      else {
        const [a, b] = [...this.pointers.values()];
        const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
        this.zoomTo((g.zoom * Math.hypot(a.x - b.x, a.y - b.y)) / g.distance, mid.x, mid.y);
        this.pan(mid.x - g.mid.x, mid.y - g.mid.y);
        g.mid = mid;
      }
    });
    const lift = (/** @type {PointerEvent} */ e) => {
      this.pointers.delete(e.pointerId);
      this.startGesture();
    };
    canvas.addEventListener('pointerup', lift);
    canvas.addEventListener('pointercancel', lift);
    canvas.addEventListener(
      'wheel',
      (e) => {
        if (!this.images) return;
        e.preventDefault();
        const p = this.at(e);
        this.zoomTo(this.step(e.deltaY < 0 ? 1 : -1), p.x, p.y);
      },
      { passive: false },
    );
    viewport.addEventListener('keydown', (e) => {
      if (this.images && this.key(e.key)) e.preventDefault();
    });
    slider.addEventListener('input', () => this.setSplit(Number(slider.value) / Number(slider.max)));
    this.el.zoomIn.addEventListener('click', () => this.zoomTo(this.step(1)));
    this.el.zoomOut.addEventListener('click', () => this.zoomTo(this.step(-1)));
    this.el.zoomReal.addEventListener('click', () => this.zoomTo(1));
    this.el.zoomFit.addEventListener('click', () => this.images && this.zoomTo(this.fitZoom()));
    // On the LR panel a click or a drag centres the view there.
    const centreOn = (/** @type {PointerEvent} */ e) => {
      if (!this.images) return;
      const p = this.at(e, lrCanvas);
      const perLr = this.images.scale / /** @type {number} */ (this.lrZoom);
      this.center = { x: p.x * perLr, y: p.y * perLr };
      this.render();
    };
    lrCanvas.addEventListener('pointerdown', (e) => {
      if (e.pointerType === 'mouse') lrCanvas.setPointerCapture(e.pointerId);
      this.lrPointer = e.pointerId;
      centreOn(e);
    });
    lrCanvas.addEventListener('pointermove', (e) => e.pointerId === this.lrPointer && centreOn(e));
    const release = (/** @type {PointerEvent} */ e) => e.pointerId === this.lrPointer && (this.lrPointer = null);
    lrCanvas.addEventListener('pointerup', release);
    lrCanvas.addEventListener('pointercancel', release);
  }

  /** What the pointers now down do: one near the line moves it, one elsewhere pans, two pinch. */
  startGesture() {
    const points = [...this.pointers.values()];
    if (points.length === 0) this.gesture = null;
    else if (points.length === 1) {
      const line = this.split * this.el.canvas.width;
      this.gesture = { kind: Math.abs(points[0].x - line) <= LINE_GRAB * this.dpr ? 'line' : 'pan' };
    } else {
      const [a, b] = points;
      const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
      this.gesture = { kind: 'pinch', zoom: this.zoom, distance: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)), mid };
    }
  }

  /**
   * Handles a key; false for keys the view does not use.
   * @param {string} key
   */
  key(key) {
    /** @type {Partial<Record<string, [number, number]>>} */
    const pans = {
      ArrowLeft: [KEY_PAN, 0],
      ArrowRight: [-KEY_PAN, 0],
      ArrowUp: [0, KEY_PAN],
      ArrowDown: [0, -KEY_PAN],
    };
    const pan = pans[key];
    if (pan) this.pan(pan[0] * this.dpr, pan[1] * this.dpr);
    else if (key === '+' || key === '=') this.zoomTo(this.step(1));
    else if (key === '-' || key === '_') this.zoomTo(this.step(-1));
    else if (key === '1') this.zoomTo(1);
    else if (key === '0') this.zoomTo(this.fitZoom());
    else if (key === '[') this.setSplit(this.split - 0.05);
    else if (key === ']') this.setSplit(this.split + 0.05);
    else return false;
    return true;
  }
}
