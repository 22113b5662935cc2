/*!
 * PaymentGateway checkout SDK.
 *
 *   <script src="https://<checkout-cdn>/checkout.js"></script>
 *   const checkout = new PaymentGateway({key, orderId, onSuccess, onFailure, onClose});
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
