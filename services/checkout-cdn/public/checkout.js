/*!
 * PaymentGateway checkout SDK.
 *
 *   <script src="https://<checkout-cdn>/checkout.js"></script>
 *   const checkout = new PaymentGateway({key, orderId, onSuccess, onFailure, onClose});
 *   // Test mode only: choose the bank's answer and delay for this checkout's payments.
 *   new PaymentGateway({key, orderId, testOutcome: 'failed:INSUFFICIENT_FUNDS', testDelayMs: 0});
 *   checkout.open();
 *
 * The hosted checkout runs in an iframe served by the CDN this file was loaded from;
 * the two windows talk with postMessage, and each side accepts messages only from the
 * other's exact origin and window.
 */
(function (global) {
  'use strict';

  if (typeof global.PaymentGateway === 'function') {
    return; // Loaded twice: keep the first copy (and its open modal, if any).
  }

  const VERSION = '1.0.0';
  const MODAL_ID = 'payment-gateway-modal';
  const STYLE_ID = 'payment-gateway-styles';

  // The CDN origin is wherever this script came from, so one file serves every environment.
  const CDN_ORIGIN = (function resolveCdnOrigin() {
    let script = document.currentScript;
    if (!script || !script.src) {
      const candidates = document.querySelectorAll('script[src]');
      for (const candidate of candidates) {
        if (/\/checkout\.js(?:[?#].*)?$/.test(candidate.src)) script = candidate;
      }
    }
    if (!script || !script.src) {
      throw new Error('PaymentGateway: cannot tell which origin checkout.js was loaded from');
    }
    return new URL(script.src, document.baseURI).origin;
  })();

  const STYLES = `
#${MODAL_ID} { position: fixed; inset: 0; z-index: 2147483000; }
#${MODAL_ID} .modal-overlay {
  position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  background: rgba(15, 23, 42, 0.62); padding: 16px; box-sizing: border-box;
  animation: pg-fade-in 160ms ease-out;
}
#${MODAL_ID} .modal-content {
  position: relative; width: 100%; max-width: 440px; height: min(680px, calc(100vh - 32px));
  background: #f4f6fb; border-radius: 16px; overflow: hidden;
  box-shadow: 0 24px 64px rgba(15, 23, 42, 0.35);
  animation: pg-rise 200ms ease-out;
}
#${MODAL_ID} iframe { display: block; width: 100%; height: 100%; border: 0; background: transparent; }
#${MODAL_ID} .close-button {
  position: absolute; top: 10px; right: 10px; width: 36px; height: 36px; margin: 0; padding: 0;
  display: flex; align-items: center; justify-content: center;
  border: 0; border-radius: 50%; background: rgba(255, 255, 255, 0.92); color: #1e293b;
  font: 600 22px/1 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; cursor: pointer;
  box-shadow: 0 2px 8px rgba(15, 23, 42, 0.18);
}
#${MODAL_ID} .close-button:hover { background: #fff; }
#${MODAL_ID} .close-button:focus-visible { outline: 3px solid #6366f1; outline-offset: 2px; }
@media (max-width: 480px) {
  #${MODAL_ID} .modal-overlay { padding: 0; }
  #${MODAL_ID} .modal-content { max-width: none; height: 100%; border-radius: 0; }
}
@keyframes pg-fade-in { from { opacity: 0; } to { opacity: 1; } }
@keyframes pg-rise { from { transform: translateY(12px); opacity: 0.6; } to { transform: none; opacity: 1; } }
@media (prefers-reduced-motion: reduce) {
  #${MODAL_ID} .modal-overlay, #${MODAL_ID} .modal-content { animation: none; }
}
`;

  let activeCheckout = null;

  function requireText(options, name, hint) {
    const value = options[name];
    if (typeof value !== 'string' || value.trim() === '') {
      throw new TypeError(`PaymentGateway: "${name}" is required (${hint})`);
    }
    return value.trim();
  }

  function optionalCallback(options, name) {
    const value = options[name];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'function') {
      throw new TypeError(`PaymentGateway: "${name}" must be a function`);
    }
    return value;
  }

  function optionalText(options, name) {
    const value = options[name];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string' || value.trim() === '') {
      throw new TypeError(`PaymentGateway: "${name}" must be a non-empty string`);
    }
    return value.trim();
  }

  function optionalDelay(options, name) {
    const value = options[name];
    if (value === undefined || value === null) return null;
    if (!Number.isInteger(value) || value < 0) {
      throw new TypeError(`PaymentGateway: "${name}" must be a whole number of milliseconds`);
    }
    return value;
  }

  function injectStyles() {
    if (document.getElementById(STYLE_ID)) return;
    const style = document.createElement('style');
    style.id = STYLE_ID;
    style.textContent = STYLES;
    (document.head || document.documentElement).appendChild(style);
  }

  // A merchant's callback that throws must not break the checkout; report it, then go on.
  function invoke(callback, arg) {
    if (!callback) return;
    try {
      callback(arg);
    } catch (error) {
      setTimeout(() => {
        throw error;
      });
    }
  }

  function text(value) {
    return typeof value === 'string' ? value : value == null ? null : String(value);
  }

  class PaymentGateway {
    /** Create a checkout for one order; nothing is shown until open(). */
    constructor(options) {
      if (!options || typeof options !== 'object') {
        throw new TypeError('PaymentGateway: an options object with "key" and "orderId" is required');
      }
      this.key = requireText(options, 'key', 'your API key, e.g. "key_test_abc123"');
      this.orderId = requireText(options, 'orderId', 'create an order with POST /api/v1/orders first');
      this.onSuccess = optionalCallback(options, 'onSuccess');
      this.onFailure = optionalCallback(options, 'onFailure');
      this.onClose = optionalCallback(options, 'onClose');
      // Test controls (test mode only): the gateway decides the payment as asked.
      this.testOutcome = optionalText(options, 'testOutcome');
      this.testDelayMs = optionalDelay(options, 'testDelayMs');
      this._modal = null;
      this._iframe = null;
      this._closeButton = null;
      this._returnFocus = null;
      this._bodyOverflow = '';
      this._succeeded = false;
      this._failed = false;
      this._handleMessage = this._handleMessage.bind(this);
      this._handleKeydown = this._handleKeydown.bind(this);
      this._handleFocusIn = this._handleFocusIn.bind(this);
    }

    /** Show the checkout modal; a second call while open does nothing. */
    open() {
      if (this._modal) return this;
      if (!document.body) {
        throw new Error('PaymentGateway: open() needs document.body; call it once the page has loaded');
      }
      if (activeCheckout && activeCheckout !== this) activeCheckout.close();
      injectStyles();
      this._succeeded = false;
      this._failed = false;

      const src = new URL('/checkout', CDN_ORIGIN);
      src.searchParams.set('order_id', this.orderId);
      src.searchParams.set('key', this.key);
      src.searchParams.set('embedded', 'true');
      src.searchParams.set('origin', window.location.origin);
      if (this.testOutcome !== null) src.searchParams.set('test_outcome', this.testOutcome);
      if (this.testDelayMs !== null) src.searchParams.set('test_delay_ms', String(this.testDelayMs));

      const modal = document.createElement('div');
      modal.id = MODAL_ID;
      modal.setAttribute('data-test-id', 'payment-modal');
      modal.setAttribute('role', 'dialog');
      modal.setAttribute('aria-modal', 'true');
      modal.setAttribute('aria-label', 'Checkout');

      const overlay = document.createElement('div');
      overlay.className = 'modal-overlay';
      overlay.addEventListener('click', (event) => {
        if (event.target === overlay) this.close();
      });

      const content = document.createElement('div');
      content.className = 'modal-content';

      const iframe = document.createElement('iframe');
      iframe.setAttribute('data-test-id', 'payment-iframe');
      iframe.title = 'Secure checkout';
      iframe.allow = 'payment';
      iframe.referrerPolicy = 'origin';
      iframe.addEventListener('load', () => {
        // Introduce ourselves; the page answers only to this window and this origin.
        if (iframe.contentWindow) {
          iframe.contentWindow.postMessage({type: 'checkout_init', data: {version: VERSION}}, CDN_ORIGIN);
        }
        iframe.focus();
      });
      iframe.src = src.toString();

      const closeButton = document.createElement('button');
      closeButton.type = 'button';
      closeButton.className = 'close-button';
      closeButton.setAttribute('data-test-id', 'close-modal-button');
      closeButton.setAttribute('aria-label', 'Close checkout');
      closeButton.textContent = '\u00d7';
      closeButton.addEventListener('click', () => this.close());

      content.appendChild(iframe);
      content.appendChild(closeButton);
      overlay.appendChild(content);
      modal.appendChild(overlay);

      this._modal = modal;
      this._iframe = iframe;
      this._closeButton = closeButton;
      this._returnFocus = document.activeElement;
      this._bodyOverflow = document.body.style.overflow;
      window.addEventListener('message', this._handleMessage);
      document.addEventListener('keydown', this._handleKeydown);
      document.addEventListener('focusin', this._handleFocusIn);
      document.body.appendChild(modal);
      document.body.style.overflow = 'hidden';
      activeCheckout = this;
      return this;
    }

    /** Remove the modal and call onClose; does nothing when not open. */
    close() {
      if (!this._modal) return this;
      window.removeEventListener('message', this._handleMessage);
      document.removeEventListener('keydown', this._handleKeydown);
      document.removeEventListener('focusin', this._handleFocusIn);
      this._modal.remove();
      this._modal = null;
      this._iframe = null;
      this._closeButton = null;
      document.body.style.overflow = this._bodyOverflow;
      if (this._returnFocus && typeof this._returnFocus.focus === 'function') {
        this._returnFocus.focus();
      }
      this._returnFocus = null;
      if (activeCheckout === this) activeCheckout = null;
      invoke(this.onClose);
      return this;
    }

    _handleKeydown(event) {
      if (event.key === 'Escape') {
        this.close();
      } else if (event.key === 'Tab' && !event.shiftKey && document.activeElement === this._closeButton) {
        // The close button is the modal's last stop; wrap around to the checkout.
        event.preventDefault();
        this._iframe.focus();
      }
    }

    // A modal keeps keyboard focus: tabbing out of it lands back in the checkout.
    _handleFocusIn(event) {
      if (this._modal && !this._modal.contains(event.target)) this._iframe.focus();
    }

    _handleMessage(event) {
      // Only our own iframe, on the CDN origin, may talk to us.
      if (event.origin !== CDN_ORIGIN) return;
      if (!this._iframe || event.source !== this._iframe.contentWindow) return;
      const message = event.data;
      if (!message || typeof message !== 'object' || typeof message.type !== 'string') return;
      const data = message.data && typeof message.data === 'object' ? message.data : {};
      switch (message.type) {
        case 'payment_success':
          if (this._succeeded) return;
          this._succeeded = true;
          invoke(this.onSuccess, {
            paymentId: text(data.paymentId),
            orderId: text(data.orderId) || this.orderId,
            status: text(data.status) || 'success',
          });
          break;
        case 'payment_failed':
          if (this._failed || this._succeeded) return;
          this._failed = true;
          invoke(this.onFailure, {
            paymentId: text(data.paymentId),
            errorCode: text(data.errorCode),
            errorDescription: text(data.errorDescription),
          });
          break;
        case 'close_modal':
          this.close();
          break;
        default:
          break;
      }
    }
  }

  PaymentGateway.version = VERSION;
  PaymentGateway.cdnOrigin = CDN_ORIGIN;
  global.PaymentGateway = PaymentGateway;
})(window);

/*!
 * Razorpay Checkout compatibility: a page written for Razorpay Checkout pays through the
 * PaymentGateway modal with only the script URL changed.
 *
 *   const rzp = new Razorpay({key, amount, currency, order_id, name, description, prefill, notes,
 *                             theme: {color}, handler, modal: {ondismiss}});
 *   rzp.on('payment.failed', (response) => console.log(response.error));
 *   rzp.open();
 *
 * `handler` receives {razorpay_payment_id, razorpay_order_id, razorpay_signature}; the signature
 * (hex HMAC-SHA256 of "<order_id>|<payment_id>" with the API secret) comes from the gateway's
 * public payment status, whose address the CDN publishes at /config.json.
 */
(function (global) {
  'use strict';

  if (typeof global.Razorpay === 'function' || typeof global.PaymentGateway !== 'function') {
    return; // Loaded twice (keep the first), or the SDK above did not load.
  }
  const PaymentGateway = global.PaymentGateway;
  let apiBase = null;

  function gatewayApi() {
    if (!apiBase) {
      apiBase = fetch(new URL('/config.json', PaymentGateway.cdnOrigin).toString(), {credentials: 'omit'})
        .then((response) => {
          if (!response.ok) throw new Error(`config.json answered ${response.status}`);
          return response.json();
        })
        .then((config) => String(config.apiBase).replace(/\/+$/, ''))
        .catch((error) => {
          apiBase = null; // try again on the next payment
          throw error;
        });
    }
    return apiBase;
  }

  async function signatureOf(paymentId) {
    const base = await gatewayApi();
    // The hosted page reported success after it saw it, so the signature is there; retry briefly anyway.
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const response = await fetch(`${base}/payments/${encodeURIComponent(paymentId)}/public`, {credentials: 'omit'});
      if (response.ok) {
        const payment = await response.json();
        if (payment.razorpay_signature) return payment.razorpay_signature;
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
    throw new Error(`no razorpay_signature for ${paymentId}`);
  }

  // Each callback runs in a task of its own: one that throws is reported and breaks nothing here.
  function later(callback, arg) {
    if (typeof callback === 'function') setTimeout(() => callback(arg));
  }

  // Failures at the bank's authentication page (3-D Secure), as Razorpay names their step and reason.
  const AUTHENTICATION_FAILURES = {
    AUTHENTICATION_FAILED: 'invalid_otp',
    AUTHENTICATION_CANCELLED: 'payment_cancelled',
    AUTHENTICATION_TIMEOUT: 'payment_timed_out',
  };

  function failureReason(code) {
    if (Object.prototype.hasOwnProperty.call(AUTHENTICATION_FAILURES, code)) return AUTHENTICATION_FAILURES[code];
    return typeof code === 'string' && code ? code.toLowerCase() : 'payment_failed';
  }

  function failureStep(code) {
    return Object.prototype.hasOwnProperty.call(AUTHENTICATION_FAILURES, code) ? 'payment_authentication' : 'payment_authorization';
  }

  class Razorpay {
    /** Take Razorpay Checkout's options; nothing is shown until open(). */
    constructor(options) {
      if (!options || typeof options !== 'object') {
        throw new TypeError('Razorpay: an options object with "key" and "order_id" is required');
      }
      if (typeof options.order_id !== 'string' || options.order_id.trim() === '') {
        throw new TypeError('Razorpay: "order_id" is required (create an order with POST /razorpay/v1/orders first)');
      }
      if (options.handler != null && typeof options.handler !== 'function') {
        throw new TypeError('Razorpay: "handler" must be a function');
      }
      this.options = options;
      this._listeners = {};
      this._paid = false;
      const modal = options.modal && typeof options.modal === 'object' ? options.modal : {};
      this._checkout = new PaymentGateway({
        key: options.key,
        orderId: options.order_id,
        onSuccess: (result) => this._succeeded(result),
        onFailure: (failure) => this._emit('payment.failed', {
          error: {
            code: 'BAD_REQUEST_ERROR',
            description: failure.errorDescription || 'Payment failed',
            source: 'customer',
            step: failureStep(failure.errorCode),
            reason: failureReason(failure.errorCode),
            metadata: {order_id: options.order_id, payment_id: failure.paymentId},
          },
        }),
        onClose: () => {
          if (!this._paid) later(modal.ondismiss);
        },
      });
    }

    /** Show the checkout modal. */
    open() {
      this._paid = false;
      this._checkout.open();
      return this;
    }

    /** Close the checkout modal. */
    close() {
      this._checkout.close();
      return this;
    }

    /** Listen to an event; "payment.failed" is the one Checkout emits. */
    on(event, callback) {
      if (typeof callback !== 'function') throw new TypeError('Razorpay: on() needs a function');
      (this._listeners[event] = this._listeners[event] || []).push(callback);
      return this;
    }

    _emit(event, arg) {
      for (const callback of this._listeners[event] || []) later(callback, arg);
    }

    _succeeded(result) {
      // Like Razorpay Checkout: the modal closes on success, then the handler gets the three fields.
      this._paid = true;
      this._checkout.close();
      const paymentId = result.paymentId;
      const orderId = result.orderId || this.options.order_id;
      signatureOf(paymentId)
        .then((signature) => signature, (error) => {
          console.warn(`Razorpay: ${error.message}; the handler gets no signature`);
          return null;
        })
        .then((signature) => later(this.options.handler, {
          razorpay_payment_id: paymentId,
          razorpay_order_id: orderId,
          razorpay_signature: signature,
        }));
    }
  }

  global.Razorpay = Razorpay;
})(window);
