//! A recording `Host` for the host-layer tests: inputs are set by the test, every effect is
//! appended to `events` in order.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::core::log::Level;
use crate::core::metrics::{Metric, Timing};
use crate::host::calls::{Buffer, Host, HostError, HttpCall};

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Log(Level, String),
    Count(Metric),
    CountBy(Metric, u64),
    Fact(String, String),
    Time(Timing),
    RemoveRequestHeader(String),
    SetResponseHeader(String, String),
    Dispatch { token: u32, cluster: String, body: Vec<u8> },
    DispatchFailed { cluster: String },
    Respond { status: u32, headers: Vec<(String, String)>, body: Vec<u8> },
    Resume,
    Enqueue(Vec<u8>),
    Tick(Duration),
}

pub struct FakeHost {
    pub request_headers: RefCell<HashMap<String, String>>,
    pub response_headers: RefCell<HashMap<String, String>>,
    pub buffers: RefCell<HashMap<Buffer, Vec<u8>>>,
    /// What `call_response` returns for the call being answered.
    pub call_reply: RefCell<Option<(u16, Vec<u8>)>>,
    pub fail_dispatch: Cell<bool>,
    /// Clusters whose dispatches fail (beside `fail_dispatch`, which fails them all).
    pub fail_dispatch_to: RefCell<Vec<String>>,
    pub queue_ok: Cell<bool>,
    pub queue: RefCell<VecDeque<Vec<u8>>>,
    pub now: Cell<SystemTime>,
    next_token: Cell<u32>,
    pub events: RefCell<Vec<Event>>,
}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost {
            request_headers: RefCell::default(),
            response_headers: RefCell::default(),
            buffers: RefCell::default(),
            call_reply: RefCell::default(),
            fail_dispatch: Cell::new(false),
            fail_dispatch_to: RefCell::default(),
            queue_ok: Cell::new(true),
            queue: RefCell::default(),
            now: Cell::new(UNIX_EPOCH + Duration::from_secs(1_000)),
            next_token: Cell::new(1),
            events: RefCell::default(),
        }
    }
}

impl FakeHost {
    fn push(&self, e: Event) {
        self.events.borrow_mut().push(e);
    }

    /// Takes the events recorded so far.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.borrow_mut())
    }
}

impl Host for FakeHost {
    fn log(&self, level: Level, msg: &str) {
        self.push(Event::Log(level, msg.to_string()));
    }

    fn now(&self) -> SystemTime {
        self.now.get()
    }

    fn request_header(&self, name: &str) -> Option<String> {
        self.request_headers.borrow().get(name).cloned()
    }

    fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers.borrow().get(name).cloned()
    }

    fn remove_request_header(&self, name: &str) {
        self.request_headers.borrow_mut().remove(name);
        self.push(Event::RemoveRequestHeader(name.to_string()));
    }

    fn set_response_header(&self, name: &str, value: &str) {
        self.push(Event::SetResponseHeader(name.to_string(), value.to_string()));
    }

    fn buffer(&self, kind: Buffer, size: usize) -> Vec<u8> {
        let b = self.buffers.borrow();
        let data = b.get(&kind).map(Vec::as_slice).unwrap_or_default();
        data[..size.min(data.len())].to_vec()
    }

    fn property(&self, _path: &[&str]) -> Option<String> {
        None
    }

    fn dispatch(&self, call: &HttpCall) -> Result<u32, HostError> {
        if self.fail_dispatch.get() || self.fail_dispatch_to.borrow().iter().any(|c| c == call.cluster) {
            self.push(Event::DispatchFailed { cluster: call.cluster.to_string() });
            return Err(HostError("BadArgument".into()));
        }
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        self.push(Event::Dispatch { token, cluster: call.cluster.to_string(), body: call.body.to_vec() });
        Ok(token)
    }

    fn call_response(&self, num_headers: usize, _body_size: usize) -> Option<(u16, Vec<u8>)> {
        if num_headers == 0 {
            return None;
        }
        self.call_reply.borrow_mut().take()
    }

    fn send_response(&self, status: u32, headers: &[(String, String)], body: &[u8]) -> Result<(), HostError> {
        self.push(Event::Respond { status, headers: headers.to_vec(), body: body.to_vec() });
        Ok(())
    }

    fn resume_request(&self) {
        self.push(Event::Resume);
    }

    fn define_metrics(&self) {}

    fn count(&self, m: Metric) {
        self.push(Event::Count(m));
    }

    fn count_by(&self, m: Metric, n: u64) {
        self.push(Event::CountBy(m, n));
    }

    fn set_fact(&self, name: &str, value: &str) {
        self.push(Event::Fact(name.to_string(), value.to_string()));
    }

    fn time(&self, t: Timing, _micros: u64) {
        self.push(Event::Time(t));
    }

    fn set_tick(&self, period: Duration) {
        self.push(Event::Tick(period));
    }

    fn register_store_queue(&self) -> bool {
        self.queue_ok.get()
    }

    fn enqueue_store(&self, job: &[u8]) -> Result<(), HostError> {
        self.queue.borrow_mut().push_back(job.to_vec());
        self.push(Event::Enqueue(job.to_vec()));
        Ok(())
    }

    fn dequeue_store(&self) -> Option<Vec<u8>> {
        self.queue.borrow_mut().pop_front()
    }
}
