'use strict';
/*
 * Redoubt RAC: the browser client of a remote desktop.
 *
 * The outpost holds the RDP connection and decodes it; this script only draws the tiles it is
 * sent on a canvas and sends keyboard, pointer, clipboard and size changes back. One file, no
 * framework, no build step. The page (outpost-rac/src/pages.rs) renders:
 *
 *   <main id="rac" data-ws="/rac/SLUG/ws" data-ticket="..." data-prompt="0|1"
 *         data-username="..." data-domain="..." data-name="...">
 *     toolbar buttons [data-action=...], #status, #credentials (prompt mode), #viewport with
 *     <canvas id="screen"> and <textarea id="ime"> (Unicode mode's key target), #overlay,
 *     #clipboard-panel
 *
 * Wire protocol (version 1): binary WebSocket messages, one type byte, then little-endian
 * fields; str8/str16 = u8/u16 byte length + UTF-8; "rest" = every remaining byte. The layouts
 * are specified in outpost-proto/src/rac.rs and mirrored in the codec below.
 *
 * Test hooks (headless browser tests): document.body.dataset.state is connecting | connected |
 * ended, dataset.frames counts drawn frames, dataset.endReason holds the Ended reason
 * ("connection_lost" when the socket closed without one, "user" after Disconnect).
 */

(function (root) {
  // ---------------------------------------------------------------------------------------
  // Protocol
  // ---------------------------------------------------------------------------------------

  const PROTOCOL_VERSION = 1;

  /** Server to browser message types. */
  const SERVER = {
    HELLO: 0x01, TILE: 0x02, FRAME_END: 0x03, RESIZE: 0x04, CURSOR: 0x05,
    CURSOR_DEFAULT: 0x06, CURSOR_HIDDEN: 0x07, CLIPBOARD: 0x08, ENDED: 0x09, STATUS: 0x0a,
  };

  /** Browser to server message types. */
  const BROWSER = {
    KEY: 0x81, UNICODE: 0x82, MOUSE: 0x83, WHEEL: 0x84, CLIPBOARD: 0x85, RESIZE: 0x86,
    ACK: 0x87, SYNC_LOCKS: 0x88, CREDENTIALS: 0x89, SPECIAL: 0x8a, RELEASE_ALL: 0x8b,
  };

  /** Hello.features bits. */
  const FEATURE = {
    CLIPBOARD_TO_BROWSER: 1, CLIPBOARD_TO_REMOTE: 2, RESIZE: 4, UNICODE_KEYBOARD: 8,
  };

  /** Special.combo values. */
  const SPECIAL = { 'ctrl-alt-del': 1, windows: 2, 'alt-tab': 3 };

  /** Tile encodings and the image types of the encoded ones. */
  const TILE_FILL = 0;
  const TILE_IMAGE_TYPES = { 1: 'image/png', 2: 'image/jpeg' };

  /** The largest message the outpost accepts (MAX_BROWSER_MESSAGE_BYTES). */
  const MAX_MESSAGE_BYTES = 16 * 1024 * 1024 + 16;

  const utf8Encoder = new TextEncoder();
  const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

  /** A message the page cannot read (malformed, truncated or of an unknown type). */
  class ProtocolError extends Error {}

  /** Reads little-endian fields from one message, failing on truncation. */
  class Reader {
    constructor(buffer) {
      this.view = new DataView(buffer);
      this.bytes = new Uint8Array(buffer);
      this.at = 0;
    }
    need(n) {
      if (this.at + n > this.view.byteLength) throw new ProtocolError('truncated message');
    }
    u8() { this.need(1); const v = this.view.getUint8(this.at); this.at += 1; return v; }
    u16() { this.need(2); const v = this.view.getUint16(this.at, true); this.at += 2; return v; }
    u32() { this.need(4); const v = this.view.getUint32(this.at, true); this.at += 4; return v; }
    take(n) { this.need(n); const v = this.bytes.subarray(this.at, this.at + n); this.at += n; return v; }
    text(bytes) {
      try { return utf8Decoder.decode(bytes); } catch (_) { throw new ProtocolError('invalid UTF-8'); }
    }
    str8() { return this.text(this.take(this.u8())); }
    str16() { return this.text(this.take(this.u16())); }
    rest() { return this.take(this.view.byteLength - this.at); }
    restText() { return this.text(this.rest()); }
    /** Fixed layouts must end exactly where their last field does. */
    end() { if (this.at !== this.view.byteLength) throw new ProtocolError('trailing bytes'); }
  }

  /** Decodes one server message (an ArrayBuffer) into a plain object with a `type` name. */
  function decodeServer(buffer) {
    const r = new Reader(buffer);
    const type = r.u8();
    let m;
    switch (type) {
      case SERVER.HELLO:
        m = { type: 'hello', version: r.u16(), width: r.u16(), height: r.u16(),
          features: r.u32(), connectionId: r.str8(), endpointName: r.str16() };
        r.end();
        return m;
      case SERVER.TILE: {
        m = { type: 'tile', x: r.u16(), y: r.u16(), w: r.u16(), h: r.u16(), encoding: r.u8() };
        m.data = r.rest();
        if (m.encoding === TILE_FILL) {
          if (m.data.length !== 4) throw new ProtocolError('fill tile without 4 colour bytes');
        } else if (!(m.encoding in TILE_IMAGE_TYPES)) {
          throw new ProtocolError('unknown tile encoding ' + m.encoding);
        }
        return m;
      }
      case SERVER.FRAME_END:
        m = { type: 'frameEnd', seq: r.u32(), serverMs: r.u32() };
        r.end();
        return m;
      case SERVER.RESIZE:
        m = { type: 'resize', width: r.u16(), height: r.u16() };
        r.end();
        return m;
      case SERVER.CURSOR:
        return { type: 'cursor', hotX: r.u16(), hotY: r.u16(), png: r.rest() };
      case SERVER.CURSOR_DEFAULT:
        r.end();
        return { type: 'cursorDefault' };
      case SERVER.CURSOR_HIDDEN:
        r.end();
        return { type: 'cursorHidden' };
      case SERVER.CLIPBOARD:
        return { type: 'clipboard', text: r.restText() };
      case SERVER.ENDED:
        return { type: 'ended', reason: r.str8(), message: r.restText() };
      case SERVER.STATUS:
        return { type: 'status', text: r.restText() };
      default:
        throw new ProtocolError('unknown message type 0x' + type.toString(16));
    }
  }

  /** UTF-8 of `text`, cut at a character boundary to at most `max` bytes. */
  function utf8Max(text, max) {
    const bytes = utf8Encoder.encode(text);
    if (bytes.length <= max) return bytes;
    let end = max;
    while (end > 0 && (bytes[end] & 0xc0) === 0x80) end -= 1; // not inside a character
    return bytes.subarray(0, end);
  }

  /** UTF-8 of `text`, refusing (RangeError) what does not fit `max` bytes. */
  function utf8Exact(text, max, what) {
    const bytes = utf8Encoder.encode(text);
    if (bytes.length > max) throw new RangeError(what + ' is too long');
    return bytes;
  }

  /**
   * Builds one browser message: `parts` is a list of [kind, value] with kind u8, u16, i16,
   * u32, str8 / str16 (UTF-8 bytes, length-prefixed) or bytes (raw, for `rest`).
   */
  function build(type, parts) {
    const sizes = { u8: 1, u16: 2, i16: 2, u32: 4 };
    let size = 1;
    for (const [kind, value] of parts) {
      size += kind in sizes ? sizes[kind] : value.length + (kind === 'str8' ? 1 : kind === 'str16' ? 2 : 0);
    }
    const buffer = new ArrayBuffer(size);
    const view = new DataView(buffer);
    const bytes = new Uint8Array(buffer);
    view.setUint8(0, type);
    let at = 1;
    for (const [kind, value] of parts) {
      switch (kind) {
        case 'u8': view.setUint8(at, value); at += 1; break;
        case 'u16': view.setUint16(at, value, true); at += 2; break;
        case 'i16': view.setInt16(at, value, true); at += 2; break;
        case 'u32': view.setUint32(at, value, true); at += 4; break;
        case 'str8': view.setUint8(at, value.length); bytes.set(value, at + 1); at += 1 + value.length; break;
        case 'str16': view.setUint16(at, value.length, true); bytes.set(value, at + 2); at += 2 + value.length; break;
        default: bytes.set(value, at); at += value.length;
      }
    }
    return buffer;
  }

  const clampInt = (v, lo, hi) => Math.min(hi, Math.max(lo, Math.round(v)));

  /** Encoders of every browser message; each returns an ArrayBuffer. */
  const encode = {
    /** Key names and codes are short; an overlong one is cut rather than refused. */
    key: (down, code, key) => build(BROWSER.KEY,
      [['u8', down ? 1 : 0], ['str8', utf8Max(code, 255)], ['str8', utf8Max(key, 255)]]),
    unicode: (text) => build(BROWSER.UNICODE, [['bytes', utf8Encoder.encode(text)]]),
    mouse: (x, y, buttons) => build(BROWSER.MOUSE,
      [['u16', clampInt(x, 0, 0xffff)], ['u16', clampInt(y, 0, 0xffff)], ['u8', buttons & 0x1f]]),
    wheel: (dx, dy) => build(BROWSER.WHEEL,
      [['i16', clampInt(dx, -32768, 32767)], ['i16', clampInt(dy, -32768, 32767)]]),
    clipboard: (text) => build(BROWSER.CLIPBOARD,
      [['bytes', utf8Exact(text, MAX_MESSAGE_BYTES - 1, 'clipboard text')]]),
    resize: (width, height) => build(BROWSER.RESIZE,
      [['u16', clampInt(width, 0, 0xffff)], ['u16', clampInt(height, 0, 0xffff)]]),
    ack: (seq) => build(BROWSER.ACK, [['u32', seq >>> 0]]),
    syncLocks: (locks) => build(BROWSER.SYNC_LOCKS, [['u8', locks & 0x0f]]),
    credentials: (username, domain, password) => build(BROWSER.CREDENTIALS, [
      ['str16', utf8Exact(username, 0xffff, 'user name')],
      ['str16', utf8Exact(domain, 0xffff, 'domain')],
      ['str16', utf8Exact(password, 0xffff, 'password')],
    ]),
    special: (combo) => build(BROWSER.SPECIAL, [['u8', combo]]),
    releaseAll: () => build(BROWSER.RELEASE_ALL, []),
  };

  // ---------------------------------------------------------------------------------------
  // Pure input helpers
  // ---------------------------------------------------------------------------------------

  /**
   * Maps a point in CSS pixels relative to the canvas box to desktop pixels. The canvas is
   * scaled with `object-fit: contain`, so the picture is centred with bars on two sides.
   */
  function toDesktop(cssX, cssY, boxWidth, boxHeight, desktopWidth, desktopHeight) {
    if (!(boxWidth > 0 && boxHeight > 0 && desktopWidth > 0 && desktopHeight > 0)) return null;
    const scale = Math.min(boxWidth / desktopWidth, boxHeight / desktopHeight);
    const left = (boxWidth - desktopWidth * scale) / 2;
    const top = (boxHeight - desktopHeight * scale) / 2;
    return {
      x: clampInt(Math.floor((cssX - left) / scale), 0, desktopWidth - 1),
      y: clampInt(Math.floor((cssY - top) / scale), 0, desktopHeight - 1),
    };
  }

  /**
   * DOM `MouseEvent.buttons` bits are 1 primary, 2 secondary, 4 auxiliary, 8 back, 16 forward:
   * the protocol's 1 left, 2 right, 4 middle, 8 back, 16 forward, bit for bit.
   */
  const domButtons = (buttons) => buttons & 0x1f;

  /** Wheel units per notch (Windows' WHEEL_DELTA) and what one DOM delta unit is worth. */
  const WHEEL_NOTCH = 120;
  const WHEEL_UNITS_PER = {
    0: WHEEL_NOTCH / 100, // pixels: browsers scroll about 100 px per notch
    1: WHEEL_NOTCH / 3, // lines: 3 lines per notch
    2: WHEEL_NOTCH * 10, // pages: a page is about 10 notches
  };
  const wheelUnits = (delta, deltaMode) => delta * (WHEEL_UNITS_PER[deltaMode] || WHEEL_UNITS_PER[0]);

  /** Lock state as SyncLocks bits (1 caps, 2 num, 4 scroll) from any event with modifiers. */
  function lockBits(event) {
    return (event.getModifierState('CapsLock') ? 1 : 0)
      | (event.getModifierState('NumLock') ? 2 : 0)
      | (event.getModifierState('ScrollLock') ? 4 : 0);
  }

  /** The desktop size to ask for: device pixels, 200..8192, width even. */
  function wantedSize(cssWidth, cssHeight, ratio) {
    const width = clampInt(Math.floor(cssWidth * ratio), 200, 8192) & ~1;
    const height = clampInt(Math.floor(cssHeight * ratio), 200, 8192);
    return { width, height };
  }

  /** A key typed as a character in Unicode mode: one code point, no Ctrl/Alt/Meta (AltGr is). */
  function isPrintable(event) {
    if ([...event.key].length !== 1) return false;
    if (event.getModifierState('AltGraph')) return !event.metaKey;
    return !event.ctrlKey && !event.altKey && !event.metaKey;
  }

  /** Ctrl+V, Cmd+V or Shift+Insert: the browser fires `paste` only if the keydown goes on. */
  const isPasteCombo = (event) =>
    (event.code === 'KeyV' && (event.ctrlKey || event.metaKey) && !event.altKey)
    || (event.code === 'Insert' && event.shiftKey);

  const LOCK_CODES = new Set(['CapsLock', 'NumLock', 'ScrollLock']);

  // ---------------------------------------------------------------------------------------
  // The session page
  // ---------------------------------------------------------------------------------------

  function start(doc, win) {
    const main = doc.getElementById('rac');
    const canvas = doc.getElementById('screen');
    if (!main || !canvas) return; // not a session page
    const ctx = canvas.getContext('2d', { alpha: false });
    const body = doc.body;
    const $ = (id) => doc.getElementById(id);
    const statusLine = $('status');
    const viewport = $('viewport') || canvas.parentElement;
    const form = $('credentials');
    const overlay = $('overlay');
    const buttons = Array.from(main.querySelectorAll('[data-action]'));
    const unicodeButton = main.querySelector('[data-action="unicode"]');
    const name = main.dataset.name || 'the remote desktop';

    let ws = null;
    let state = 'connecting';
    let features = 0;
    let unicodeMode = false;
    let frames = 0;
    let pending = []; // this frame's drawing operations, in arrival order
    let drawChain = Promise.resolve(); // frames are drawn strictly in order
    let cursorUrl = null;
    let lastClipboard = null; // the text last sent to or received from the remote
    let needLockSync = true;
    const unicodeDown = new Set(); // codes whose keydown went as Unicode (no keyup to send)

    // Keys go to the canvas, or in Unicode mode to a hidden text field: IMEs and virtual
    // keyboards only work on an editable element (and only make sense when typing characters;
    // in scancode mode the remote desktop's own input method does that work).
    const imeSink = doc.getElementById('ime');
    const keyTarget = () => (unicodeMode && imeSink ? imeSink : canvas);
    const focusKeys = () => keyTarget().focus({ preventScroll: true });
    const hasKeys = () => doc.activeElement === canvas || (imeSink !== null && doc.activeElement === imeSink);

    body.dataset.state = 'connecting';
    body.dataset.frames = '0';

    const setStatus = (text) => { if (statusLine) statusLine.textContent = text; };
    const connected = () => state === 'connected' && ws && ws.readyState === WebSocket.OPEN;

    function send(buffer) {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(buffer);
    }

    // --- connection ----------------------------------------------------------------------

    function connect(credentials) {
      const scheme = win.location.protocol === 'https:' ? 'wss' : 'ws';
      // The viewport's size goes with the connection: a desktop that follows the browser
      // starts at it, with no resize right after logon (see askForSize).
      const box = viewport.getBoundingClientRect();
      const size = wantedSize(box.width, box.height, win.devicePixelRatio || 1);
      const url = scheme + '://' + win.location.host + main.dataset.ws
        + '?ticket=' + encodeURIComponent(main.dataset.ticket || '')
        + '&width=' + size.width + '&height=' + size.height;
      setStatus('Connecting to ' + name + '\u2026');
      ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      ws.addEventListener('open', () => {
        if (credentials) send(credentials); // prompt mode: the very first message
      });
      ws.addEventListener('message', (event) => {
        if (!(event.data instanceof ArrayBuffer)) return protocolFailure('a text message');
        let message;
        try {
          message = decodeServer(event.data);
        } catch (error) {
          if (error instanceof ProtocolError) return protocolFailure(error.message);
          throw error;
        }
        handle(message);
      });
      ws.addEventListener('close', () => {
        if (state !== 'ended') end('connection_lost', 'The connection to the outpost was lost.');
      });
    }

    /** The outpost sent something unreadable: close (browsers may only send 1000 or 4000-4999). */
    function protocolFailure(what) {
      end('bad_message', 'The outpost sent a message this page cannot read (' + what + ').');
      if (ws) ws.close(4007, 'invalid message');
    }

    function handle(m) {
      switch (m.type) {
        case 'hello': return onHello(m);
        case 'tile': return onTile(m);
        case 'frameEnd': return onFrameEnd(m.seq);
        case 'resize': pending.push({ resize: m }); return undefined;
        case 'cursor': return setCursor(m);
        case 'cursorDefault': return setCursor(null);
        case 'cursorHidden': canvas.style.cursor = 'none'; return undefined;
        case 'clipboard': return onRemoteClipboard(m.text);
        case 'ended': return end(m.reason, m.message || 'The connection ended (' + m.reason + ').');
        case 'status': return setStatus(m.text);
        default: return undefined;
      }
    }

    function onHello(m) {
      if (m.version !== PROTOCOL_VERSION) {
        end('bad_message', 'This page is out of date (protocol ' + m.version + '). Reload it.');
        ws.close(4002, 'unsupported protocol version');
        return;
      }
      features = m.features;
      resizeCanvas(m.width, m.height);
      setUnicode((features & FEATURE.UNICODE_KEYBOARD) !== 0);
      state = 'connected';
      body.dataset.state = 'connected';
      setStatus('Connected to ' + (m.endpointName || name));
      for (const button of buttons) button.disabled = false;
      if (form) form.hidden = true;
      needLockSync = true;
      if (features & FEATURE.RESIZE) resizeObserver.observe(viewport);
      focusKeys();
    }

    /** Ends the session on the page: overlay with the message and Reconnect. */
    function end(reason, message) {
      if (state === 'ended') return;
      state = 'ended';
      body.dataset.state = 'ended';
      body.dataset.endReason = reason;
      resizeObserver.disconnect();
      pending = [];
      for (const button of buttons) button.disabled = true;
      setStatus(message);
      if (form) form.hidden = true;
      if (overlay) {
        $('overlay-message').textContent = message;
        overlay.hidden = false;
        $('reconnect').focus();
      }
      if (doc.fullscreenElement) doc.exitFullscreen().catch(() => {});
    }

    // --- drawing -------------------------------------------------------------------------

    function resizeCanvas(width, height) {
      canvas.width = width; // also clears it
      canvas.height = height;
    }

    /** Starts decoding an image tile at once, so decoding overlaps with receiving. */
    function onTile(m) {
      const op = { tile: m, bitmap: null };
      if (m.encoding !== TILE_FILL) {
        const blob = new Blob([m.data], { type: TILE_IMAGE_TYPES[m.encoding] });
        op.ready = createImageBitmap(blob).then(
          (bitmap) => { op.bitmap = bitmap; },
          () => { console.warn('rac: a tile could not be decoded'); },
        );
      }
      pending.push(op);
    }

    /** Decodes the frame's tiles, draws them all in one animation frame, then acknowledges. */
    function onFrameEnd(seq) {
      const ops = pending;
      pending = [];
      const decoded = Promise.all(ops.map((op) => op.ready));
      drawChain = drawChain
        .then(() => decoded)
        .then(() => new Promise((resolve) => win.requestAnimationFrame(resolve)))
        .then(() => {
          if (state === 'ended') {
            for (const op of ops) if (op.bitmap) op.bitmap.close();
            return;
          }
          for (const op of ops) draw(op);
          frames += 1;
          body.dataset.frames = String(frames);
          send(encode.ack(seq));
          if (frames === 1) askForSize(); // held back until now, see askForSize
        })
        .catch((error) => console.error('rac: drawing failed', error));
    }

    function draw(op) {
      if (op.resize) return resizeCanvas(op.resize.width, op.resize.height);
      const t = op.tile;
      if (t.encoding === TILE_FILL) {
        const [r, g, b, a] = t.data;
        ctx.fillStyle = 'rgba(' + r + ',' + g + ',' + b + ',' + (a / 255) + ')';
        ctx.fillRect(t.x, t.y, t.w, t.h);
      } else if (op.bitmap) {
        ctx.drawImage(op.bitmap, t.x, t.y, t.w, t.h);
        op.bitmap.close();
      }
      return undefined;
    }

    /** The remote pointer's shape (`m` null: the default arrow). Old blob URLs are revoked. */
    function setCursor(m) {
      const old = cursorUrl;
      cursorUrl = null;
      if (m) {
        cursorUrl = URL.createObjectURL(new Blob([m.png], { type: 'image/png' }));
        canvas.style.cursor = 'url(' + cursorUrl + ') ' + m.hotX + ' ' + m.hotY + ', auto';
      } else {
        canvas.style.cursor = '';
      }
      if (old) URL.revokeObjectURL(old);
    }

    // --- keyboard ------------------------------------------------------------------------

    /** Sends SyncLocks once after (re)gaining focus, from the first event that knows them. */
    function syncLocks(event) {
      if (!needLockSync || !connected() || LOCK_CODES.has(event.code)) return;
      needLockSync = false;
      send(encode.syncLocks(lockBits(event)));
    }

    // Ctrl+V: the V keydown waits for the paste event (at most PASTE_WAIT_MS), so the remote
    // has the new clipboard before it sees the keys; keys typed meanwhile queue behind it.
    const PASTE_WAIT_MS = 150;
    let pasteWait = null;
    const keyQueue = [];

    function sendKey(buffer) {
      if (pasteWait) keyQueue.push(buffer); else send(buffer);
    }

    function finishPasteWait(text) {
      if (!pasteWait) return;
      win.clearTimeout(pasteWait);
      pasteWait = null;
      if (text) sendClipboard(text);
      while (keyQueue.length) send(keyQueue.shift());
    }

    function onKeyDown(event) {
      if (event.isComposing || event.keyCode === 229) return; // the IME has it
      if (!connected()) return;
      syncLocks(event);
      const paste = isPasteCombo(event) && (features & FEATURE.CLIPBOARD_TO_REMOTE);
      if (!paste) event.preventDefault();
      if (unicodeMode && event.key === 'Dead') return; // the composed character follows
      if (unicodeMode && isPrintable(event)) {
        unicodeDown.add(event.code);
        sendKey(encode.unicode(event.key));
        return;
      }
      if (paste && !pasteWait) pasteWait = win.setTimeout(() => finishPasteWait(null), PASTE_WAIT_MS);
      sendKey(encode.key(true, event.code, event.key));
    }

    function onKeyUp(event) {
      if (event.isComposing) return;
      event.preventDefault();
      if (!connected()) return;
      if (unicodeDown.delete(event.code)) return; // its keydown went as a character
      if (unicodeMode && event.key === 'Dead') return;
      sendKey(encode.key(false, event.code, event.key));
    }

    function onCompositionEnd(event) {
      if (connected() && event.data) sendKey(encode.unicode(event.data));
      if (imeSink) imeSink.value = '';
    }

    /**
     * Text the key events did not carry (virtual keyboards send keyCode 229 and then `input`):
     * typed as characters; line breaks and deletions as Enter and Backspace presses.
     */
    function onImeInput(event) {
      if (event.isComposing) return;
      imeSink.value = '';
      if (!connected()) return;
      const press = { insertLineBreak: ['Enter', 'Enter'], insertParagraph: ['Enter', 'Enter'],
        deleteContentBackward: ['Backspace', 'Backspace'] }[event.inputType];
      if (press) {
        sendKey(encode.key(true, press[0], press[1]));
        sendKey(encode.key(false, press[0], press[1]));
      } else if (event.inputType === 'insertText' && event.data) {
        sendKey(encode.unicode(event.data));
      }
    }

    function releaseAll() {
      finishPasteWait(null);
      unicodeDown.clear();
      needLockSync = true;
      if (connected()) send(encode.releaseAll());
    }

    function setUnicode(on) {
      const moveFocus = hasKeys();
      unicodeMode = on;
      if (unicodeButton) unicodeButton.setAttribute('aria-pressed', on ? 'true' : 'false');
      if (moveFocus) focusKeys();
    }

    /** Leaving the canvas and its text field (not moving between them) lifts every key. */
    function onKeysBlur(event) {
      if (event.relatedTarget !== canvas && event.relatedTarget !== imeSink) releaseAll();
    }

    // --- pointer -------------------------------------------------------------------------

    let moveEvent = null; // the latest pointermove not sent yet
    let moveScheduled = false;
    let wheelX = 0;
    let wheelY = 0;

    let lastButtons = 0;

    function sendMouse(event) {
      const box = canvas.getBoundingClientRect();
      const point = toDesktop(event.clientX - box.left, event.clientY - box.top,
        box.width, box.height, canvas.width, canvas.height);
      if (!point) return;
      lastButtons = domButtons(event.buttons);
      send(encode.mouse(point.x, point.y, lastButtons));
    }

    /** Once per animation frame: the latest pointer position and the summed wheel turns. */
    function flushPointer() {
      moveScheduled = false;
      if (!connected()) return;
      if (moveEvent && ws.bufferedAmount < 1024 * 1024) {
        sendMouse(moveEvent);
        moveEvent = null;
      }
      const dx = Math.trunc(wheelX);
      const dy = Math.trunc(wheelY);
      if (dx || dy) {
        wheelX -= dx;
        wheelY -= dy;
        send(encode.wheel(dx, dy));
      }
      if (moveEvent) schedulePointer(); // the socket was busy: try next frame
    }

    function schedulePointer() {
      if (!moveScheduled) {
        moveScheduled = true;
        win.requestAnimationFrame(flushPointer);
      }
    }

    function onPointerMove(event) {
      if (!connected()) return;
      if (domButtons(event.buttons) !== lastButtons) {
        // A second button pressed or released while another is held ("chorded") comes as a
        // move, not as pointerdown/up: send it now, like one.
        moveEvent = null;
        sendMouse(event);
        return;
      }
      moveEvent = event;
      schedulePointer();
    }

    function onPointerButton(event) {
      if (!connected()) return;
      if (event.type === 'pointerdown') {
        focusKeys();
        canvas.setPointerCapture(event.pointerId);
      } else if (canvas.hasPointerCapture(event.pointerId)) {
        canvas.releasePointerCapture(event.pointerId);
      }
      event.preventDefault();
      syncLocks(event);
      moveEvent = null; // this event carries the newer position
      sendMouse(event);
    }

    function onWheel(event) {
      event.preventDefault();
      if (!connected()) return;
      wheelX += wheelUnits(event.deltaX, event.deltaMode);
      wheelY += wheelUnits(event.deltaY, event.deltaMode);
      schedulePointer();
    }

    // --- clipboard -----------------------------------------------------------------------

    function sendClipboard(text) {
      if (!connected() || !(features & FEATURE.CLIPBOARD_TO_REMOTE) || text === lastClipboard) return;
      try {
        send(encode.clipboard(text));
        lastClipboard = text;
      } catch (error) {
        setStatus('The copied text is too large to send.');
      }
    }

    function onPaste(event) {
      if (!hasKeys() || !connected()) return;
      if (!(features & FEATURE.CLIPBOARD_TO_REMOTE)) return finishPasteWait(null);
      event.preventDefault();
      const text = event.clipboardData ? event.clipboardData.getData('text/plain') : '';
      if (pasteWait) finishPasteWait(text); else sendClipboard(text);
      return undefined;
    }

    /** On window focus, if reading the clipboard needs no prompt, send what changed. */
    async function onWindowFocus() {
      if (!connected() || !(features & FEATURE.CLIPBOARD_TO_REMOTE)) return;
      const clip = win.navigator.clipboard;
      if (!clip || !clip.readText || !win.navigator.permissions) return;
      try {
        const permission = await win.navigator.permissions.query({ name: 'clipboard-read' });
        if (permission.state !== 'granted') return;
        const text = await clip.readText();
        if (text) sendClipboard(text);
      } catch (_) {
        // Not supported (Firefox, Safari) or refused: the paste event still works.
      }
    }

    function onRemoteClipboard(text) {
      if (!(features & FEATURE.CLIPBOARD_TO_BROWSER)) return;
      lastClipboard = text;
      const clip = win.navigator.clipboard;
      const write = clip && clip.writeText ? clip.writeText(text) : Promise.reject(new Error('no clipboard'));
      write.catch(() => showClipboardPanel(text));
    }

    function showClipboardPanel(text) {
      const panel = $('clipboard-panel');
      if (!panel) return;
      $('clipboard-text').value = text;
      panel.hidden = false;
    }

    // --- resize --------------------------------------------------------------------------

    let resizeTimer = null;
    let lastAsked = null;
    const resizeObserver = new win.ResizeObserver(() => {
      win.clearTimeout(resizeTimer);
      resizeTimer = win.setTimeout(askForSize, 300);
    });

    /**
     * Asks for the viewport's size when it changed, never before the first frame: xrdp 0.9
     * drops the connection, or stops painting, when a resize reaches it while it is still
     * starting the session (xorgxrdp frees the shared memory of the first paint).
     */
    function askForSize() {
      if (!connected() || !(features & FEATURE.RESIZE) || frames === 0) return;
      const box = viewport.getBoundingClientRect();
      const size = wantedSize(box.width, box.height, win.devicePixelRatio || 1);
      const same = (s) => s && s.width === size.width && s.height === size.height;
      if (same(lastAsked) || same({ width: canvas.width, height: canvas.height })) return;
      lastAsked = size;
      send(encode.resize(size.width, size.height));
    }

    // --- toolbar -------------------------------------------------------------------------

    function toggleFullscreen() {
      if (doc.fullscreenElement) return doc.exitFullscreen().catch(() => {});
      if (!main.requestFullscreen) return undefined;
      return main.requestFullscreen().then(() => {
        const keyboard = win.navigator.keyboard;
        // Lets Escape, Alt+Tab-like and Ctrl+W combos reach the remote (Chromium only).
        if (keyboard && keyboard.lock) return keyboard.lock().catch(() => {});
        return undefined;
      }).catch(() => setStatus('Fullscreen is not available here.'));
    }

    function onToolbar(event) {
      const button = event.target.closest('[data-action]');
      if (!button || button.disabled) return;
      const action = button.dataset.action;
      if (action in SPECIAL) {
        if (connected()) send(encode.special(SPECIAL[action]));
      } else if (action === 'unicode') {
        setUnicode(!unicodeMode);
      } else if (action === 'fullscreen') {
        toggleFullscreen();
      } else if (action === 'disconnect') {
        end('user', 'You disconnected from ' + name + '.');
        if (ws) ws.close(1000, 'user');
        return;
      }
      focusKeys(); // keep typing into the desktop
    }

    /** Arrow keys, Home and End move between the toolbar's controls (ARIA toolbar pattern). */
    function onToolbarKey(event) {
      const controls = Array.from(toolbar.querySelectorAll('a, button:not(:disabled)'));
      const at = controls.indexOf(doc.activeElement);
      if (at < 0) return;
      const next = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: controls.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      controls[(next + controls.length) % controls.length].focus();
    }

    // --- wiring --------------------------------------------------------------------------

    for (const target of imeSink ? [canvas, imeSink] : [canvas]) {
      target.addEventListener('keydown', onKeyDown);
      target.addEventListener('keyup', onKeyUp);
      target.addEventListener('blur', onKeysBlur);
      target.addEventListener('focus', () => { needLockSync = true; });
    }
    if (imeSink) {
      imeSink.addEventListener('compositionend', onCompositionEnd);
      imeSink.addEventListener('input', onImeInput);
      // A click or Tab onto the canvas in Unicode mode hands the keys on to the text field.
      canvas.addEventListener('focus', () => { if (unicodeMode) imeSink.focus({ preventScroll: true }); });
    }
    canvas.addEventListener('pointermove', onPointerMove);
    canvas.addEventListener('pointerdown', onPointerButton);
    canvas.addEventListener('pointerup', onPointerButton);
    canvas.addEventListener('pointercancel', onPointerButton);
    canvas.addEventListener('contextmenu', (event) => event.preventDefault());
    canvas.addEventListener('wheel', onWheel, { passive: false });
    doc.addEventListener('visibilitychange', () => { if (doc.hidden) releaseAll(); });
    doc.addEventListener('paste', onPaste);
    doc.addEventListener('fullscreenchange', () => {
      const keyboard = win.navigator.keyboard;
      if (!doc.fullscreenElement && keyboard && keyboard.unlock) keyboard.unlock();
    });
    win.addEventListener('focus', onWindowFocus);
    const toolbar = main.querySelector('.toolbar');
    toolbar.addEventListener('click', onToolbar);
    toolbar.addEventListener('keydown', onToolbarKey);
    $('reconnect').addEventListener('click', () => win.location.reload());
    const copyButton = $('clipboard-copy');
    if (copyButton) {
      copyButton.addEventListener('click', () => {
        const area = $('clipboard-text');
        const clip = win.navigator.clipboard;
        const write = clip && clip.writeText ? clip.writeText(area.value) : Promise.reject(new Error('none'));
        write.then(() => { $('clipboard-panel').hidden = true; }, () => {
          area.focus();
          area.select(); // the user copies it with their own keys
        });
      });
      $('clipboard-close').addEventListener('click', () => { $('clipboard-panel').hidden = true; });
    }
    win.addEventListener('pagehide', () => {
      if (ws && ws.readyState === WebSocket.OPEN) ws.close(1000, 'page closed');
    });

    if (main.dataset.prompt === '1' && form) {
      startWithCredentials(form);
    } else {
      connect(null);
    }

    /** Prompt mode: connect only once the form is submitted; Credentials go first. */
    function startWithCredentials(credentialsForm) {
      const field = (fieldName) => credentialsForm.elements.namedItem(fieldName);
      const username = field('username');
      const domain = field('domain');
      const password = field('password');
      if (!username.value) username.value = main.dataset.username || '';
      if (!domain.value) domain.value = main.dataset.domain || '';
      credentialsForm.hidden = false;
      credentialsForm.querySelector('[type="submit"]').disabled = false;
      (username.value ? password : username).focus();
      credentialsForm.addEventListener('submit', (event) => {
        event.preventDefault();
        let message;
        try {
          message = encode.credentials(username.value, domain.value, password.value);
        } catch (error) {
          setStatus(error.message);
          return;
        }
        password.value = ''; // used once, never kept
        credentialsForm.hidden = true;
        connect(message);
      });
    }
  }

  // ---------------------------------------------------------------------------------------
  // Entry points
  // ---------------------------------------------------------------------------------------

  const api = {
    PROTOCOL_VERSION, SERVER, BROWSER, FEATURE, ProtocolError,
    decodeServer, encode, toDesktop, domButtons, wheelUnits, wantedSize, isPrintable, start,
  };
  if (typeof module === 'object' && module.exports) {
    module.exports = api; // node: codec tests
  } else if (root.document) {
    if (root.document.readyState === 'loading') {
      root.document.addEventListener('DOMContentLoaded', () => start(root.document, root));
    } else {
      start(root.document, root);
    }
  }
}(typeof window === 'undefined' ? globalThis : window));
