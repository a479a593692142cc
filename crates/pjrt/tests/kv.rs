//! The key-value callbacks of `PJRT_Client_Create`, in one process. The CPU plugin never calls them,
//! so the C trampolines are called here exactly as a multi-process plugin would: argument structs
//! of the header's sizes, the plugin's `callback_error` to make errors, the value deleter to free
//! what a get returned. And a client still creates (and runs) with the callbacks set.

use std::ffi::c_char;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pjrt::ffi::{self, Args};
use pjrt::kv::{self, Callbacks};
use pjrt::{Client, ClientOptions, Device, KeyValueStore, KvError, KvStore, MemoryStore};

/// What the fake `callback_error` was last called with, per thread.
static ERRORS: Mutex<Vec<(std::thread::ThreadId, i32, String)>> = Mutex::new(Vec::new());
/// A non-null value standing for the plugin's error (never dereferenced).
const SENTINEL: *mut ffi::PJRT_Error = 8 as *mut ffi::PJRT_Error;

unsafe extern "C" fn make_error(code: i32, msg: *const c_char, len: usize) -> *mut ffi::PJRT_Error {
    // SAFETY: the trampolines pass `len` readable bytes.
    let m = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    ERRORS.lock().unwrap().push((
        std::thread::current().id(),
        code,
        String::from_utf8_lossy(m).into(),
    ));
    SENTINEL
}

fn last_error() -> (i32, String) {
    let me = std::thread::current().id();
    let e = ERRORS.lock().unwrap();
    let (_, c, m) = e
        .iter()
        .rev()
        .find(|(t, _, _)| *t == me)
        .expect("an error was made");
    (*c, m.clone())
}

/// The plugin side of the three callbacks over one store.
struct Plugin {
    cb: Callbacks,
    make: ffi::PJRT_CallbackError,
}

impl Plugin {
    fn new(store: Arc<dyn KeyValueStore>) -> Plugin {
        Plugin {
            cb: Callbacks::new(store),
            make: Some(make_error),
        }
    }

    fn create_args(&self) -> ffi::PJRT_Client_Create_Args {
        let mut a = ffi::PJRT_Client_Create_Args::new();
        self.cb.install(&mut a);
        a
    }

    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), (i32, String)> {
        let c = self.create_args();
        let mut a = ffi::PJRT_KeyValuePutCallback_Args::new();
        a.key = key.as_ptr().cast();
        a.key_size = key.len();
        a.value = value.as_ptr().cast();
        a.value_size = value.len();
        a.callback_error = &mut self.make;
        a.user_arg = c.kv_put_user_arg;
        // SAFETY: arguments as the header specifies; user_arg from install.
        let e = unsafe { c.kv_put_callback.unwrap()(&mut a) };
        if e.is_null() {
            Ok(())
        } else {
            assert_eq!(e, SENTINEL);
            Err(last_error())
        }
    }

    /// Copies the value out and frees it with the deleter, as the plugin must.
    fn take(value: *mut c_char, size: usize, deleter: ffi::PJRT_KeyValue_ValueDeleter) -> Vec<u8> {
        assert!(!value.is_null());
        // SAFETY: the trampoline returned `size` bytes at `value`.
        let v = unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }.to_vec();
        // SAFETY: freed once, with the deleter given.
        unsafe { deleter.expect("a value deleter")(value) };
        v
    }

    fn get(&mut self, key: &[u8], timeout_ms: i32) -> Result<Vec<u8>, (i32, String)> {
        let c = self.create_args();
        let mut a = ffi::PJRT_KeyValueGetCallback_Args::new();
        a.key = key.as_ptr().cast();
        a.key_size = key.len();
        a.timeout_in_ms = timeout_ms;
        a.callback_error = &mut self.make;
        a.user_arg = c.kv_get_user_arg;
        // SAFETY: as above.
        let e = unsafe { c.kv_get_callback.unwrap()(&mut a) };
        if e.is_null() {
            Ok(Self::take(a.value, a.value_size, a.value_deleter_callback))
        } else {
            assert_eq!(e, SENTINEL);
            assert!(a.value.is_null());
            Err(last_error())
        }
    }

    fn try_get(&mut self, key: &str) -> Result<Vec<u8>, (i32, String)> {
        let c = self.create_args();
        let mut a = ffi::PJRT_KeyValueTryGetCallback_Args::new();
        a.key = key.as_ptr().cast();
        a.key_size = key.len();
        a.callback_error = &mut self.make;
        a.user_arg = c.kv_try_get_user_arg;
        // SAFETY: as above.
        let e = unsafe { c.kv_try_get_callback.unwrap()(&mut a) };
        if e.is_null() {
            Ok(Self::take(a.value, a.value_size, a.value_deleter_callback))
        } else {
            assert_eq!(e, SENTINEL);
            Err(last_error())
        }
    }
}

#[test]
fn put_get_and_try_get_through_the_c_callbacks() {
    let store = Arc::new(MemoryStore::new());
    let mut p = Plugin::new(store.clone());
    let c = p.create_args();
    // One user argument for all three, pointing at the store.
    assert!(!c.kv_get_user_arg.is_null());
    assert_eq!(c.kv_get_user_arg, c.kv_put_user_arg);
    assert_eq!(c.kv_get_user_arg, c.kv_try_get_user_arg);

    // Binary values, including NUL bytes and the empty value, round-trip.
    let topology: Vec<u8> = (0..=255u8).chain([0, 0, 7]).collect();
    p.put("cuda:local_topology/0", &topology).unwrap();
    p.put("empty", b"").unwrap();
    assert_eq!(p.get(b"cuda:local_topology/0", 10).unwrap(), topology);
    assert_eq!(p.try_get("cuda:local_topology/0").unwrap(), topology);
    assert_eq!(p.get(b"empty", 10).unwrap(), b"");
    assert_eq!(store.keys(), ["cuda:local_topology/0", "empty"]);
    // A put replaces.
    p.put("empty", b"x").unwrap();
    assert_eq!(p.try_get("empty").unwrap(), b"x");

    // A missing key: try_get says NOT_FOUND at once; get waits its timeout, then DEADLINE_EXCEEDED.
    let (code, msg) = p.try_get("nobody").unwrap_err();
    assert_eq!(code, ffi::PJRT_Error_Code_NOT_FOUND);
    assert!(msg.contains("nobody") && msg.contains("not found"), "{msg}");
    let t = Instant::now();
    let (code, msg) = p.get(b"nobody", 60).unwrap_err();
    let waited = t.elapsed();
    assert_eq!(code, ffi::PJRT_Error_Code_DEADLINE_EXCEEDED, "{msg}");
    assert!(
        waited >= Duration::from_millis(60) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // A key that is not UTF-8.
    let (code, _) = p.get(&[0xff, 0xfe], 10).unwrap_err();
    assert_eq!(code, ffi::PJRT_Error_Code_INVALID_ARGUMENT);
}

#[test]
fn get_waits_for_a_put_from_another_thread() {
    let store = Arc::new(MemoryStore::new());
    let mut reader = Plugin::new(store.clone());
    let writer = std::thread::spawn({
        let store = store.clone();
        move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut p = Plugin::new(store);
            p.put("nccl_unique_id", b"abc").unwrap();
        }
    });
    let t = Instant::now();
    assert_eq!(reader.get(b"nccl_unique_id", 10_000).unwrap(), b"abc");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    writer.join().unwrap();
}

/// A store that fails or panics, as a broken coordinator connection would.
struct Broken {
    calls: AtomicUsize,
}

impl KeyValueStore for Broken {
    fn get(&self, _: &str, _: Duration) -> Result<Vec<u8>, KvError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        panic!("the store panics");
    }
    fn try_get(&self, _: &str) -> Result<Vec<u8>, KvError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(KvError::Failed("connection to the coordinator lost".into()))
    }
    fn put(&self, _: &str, _: &[u8]) -> Result<(), KvError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(KvError::Failed("read-only".into()))
    }
}

#[test]
fn store_failures_and_panics_become_plugin_errors() {
    let broken = Arc::new(Broken {
        calls: AtomicUsize::new(0),
    });
    let mut p = Plugin::new(broken.clone());
    let (code, msg) = p.get(b"k", 10).unwrap_err();
    assert_eq!(code, ffi::PJRT_Error_Code_INTERNAL);
    assert!(msg.contains("panicked"), "{msg}");
    let (code, msg) = p.try_get("k").unwrap_err();
    assert_eq!(code, ffi::PJRT_Error_Code_UNAVAILABLE);
    assert!(msg.contains("coordinator lost"), "{msg}");
    let (code, _) = p.put("k", b"v").unwrap_err();
    assert_eq!(code, ffi::PJRT_Error_Code_UNAVAILABLE);
    assert_eq!(broken.calls.load(Ordering::SeqCst), 3);

    // A plugin that passes no callback_error gets a null error (nothing to make one with), and no
    // value.
    let c = p.create_args();
    let mut a = ffi::PJRT_KeyValueTryGetCallback_Args::new();
    a.key = b"k".as_ptr().cast();
    a.key_size = 1;
    a.user_arg = c.kv_try_get_user_arg;
    // SAFETY: valid arguments; callback_error null.
    let e = unsafe { kv::try_get_trampoline(&mut a) };
    assert!(e.is_null() && a.value.is_null());
}

#[test]
fn a_client_creates_and_runs_with_the_callbacks_set() {
    let store = Arc::new(MemoryStore::new());
    let handle: Arc<dyn KeyValueStore> = store.clone();
    let opts = ClientOptions {
        kv_store: Some(KvStore(handle)),
        ..ClientOptions::default()
    };
    let client = Client::open_with(Device::Cpu, None, &opts).unwrap_or_else(|e| {
        panic!("this test needs the PJRT CPU plugin (./scripts/setup.sh plugin): {e}")
    });
    drop(opts);
    // The client holds the store while it lives (the plugin may call it until destroyed).
    assert_eq!(Arc::strong_count(&store), 2);
    let r = pjrt::selftest::tiny(&client, 3).unwrap();
    assert_eq!(r.runs, 3);
    // The single-process CPU plugin has nothing to exchange.
    assert!(store.keys().is_empty());
    drop(client);
    assert_eq!(Arc::strong_count(&store), 1);
}
