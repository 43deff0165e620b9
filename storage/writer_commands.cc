// storage/writer_commands.cc — the writer's control plane: a write that another thread
// hands to the writer thread (Writer::execute) and waits for, run between batches in its
// own transaction, so no two connections of this process ever contend for the write lock.
#include <cstdio>

#include "core/assert.h"
#include "storage/writer.h"

namespace rw {

// One control-plane write waiting for the writer thread (lives on the caller's stack).
struct Writer::Command {
    AdminFn fn;
    void* context;
    bool is_transaction;
    std::mutex mutex;
    std::condition_variable done_cv;
    bool is_done = false;  // Guarded by mutex.
    bool is_ok = false;
    std::string error;
};

// ---- Control-plane commands ------------------------------------------------------------

bool Writer::execute(AdminFn fn, void* context, std::string& error, bool is_transaction) {
    RW_ASSERT(fn != nullptr);
    // The writer would wait for itself.
    RW_ASSERT(std::this_thread::get_id() != writer_thread_.load(std::memory_order_relaxed));
    Command command{fn, context, is_transaction, {}, {}, false, false, {}};
    {
        std::lock_guard<std::mutex> lock(command_mutex_);
        if (!is_accepting_commands_) {
            error = "storage writer is not running";
            return false;
        }
        commands_.push_back(&command);
        has_commands_.store(true, std::memory_order_release);
    }
    wake();
    std::unique_lock<std::mutex> lock(command.mutex);
    command.done_cv.wait(lock, [&command] { return command.is_done; });
    if (!command.is_ok) {
        error = command.error;
    }
    return command.is_ok;
}

void Writer::run_commands() {
    std::deque<Command*> pending;
    {
        std::lock_guard<std::mutex> lock(command_mutex_);
        pending.swap(commands_);
        has_commands_.store(false, std::memory_order_relaxed);
    }
    for (Command* command : pending) {
        run_one_command(*command);
    }
}

void Writer::run_one_command(Command& command) {
    RW_ASSERT(!db_.in_transaction());
    bool is_ok = true;
    std::string error;
    if (command.is_transaction && !db_.step_done(begin_)) {
        is_ok = false;
        error = db_.last_error();
    }
    if (is_ok && !command.fn(db_, command.context, error)) {
        is_ok = false;
        if (error.empty()) {
            error = db_.last_error();
        }
    }
    if (is_ok && command.is_transaction && !db_.step_done(commit_)) {
        is_ok = false;
        error = db_.last_error();
    }
    if (db_.in_transaction() && !db_.step_done(rollback_)) {
        std::fprintf(stderr, "ringway: writer: ROLLBACK failed: %s\n", db_.last_error().c_str());
    }
    RW_ASSERT(!db_.in_transaction());
    admin_commands_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(command.mutex);
    command.is_ok = is_ok;
    command.error = std::move(error);
    command.is_done = true;
    command.done_cv.notify_one();  // Under the mutex: the waiter owns `command`'s storage.
}

void Writer::fail_pending_commands() {
    std::deque<Command*> pending;
    {
        std::lock_guard<std::mutex> lock(command_mutex_);
        is_accepting_commands_ = false;
        pending.swap(commands_);
        has_commands_.store(false, std::memory_order_relaxed);
    }
    for (Command* command : pending) {
        std::lock_guard<std::mutex> lock(command->mutex);
        command->is_ok = false;
        command->error = "storage writer stopped";
        command->is_done = true;
        command->done_cv.notify_one();
    }
}

}  // namespace rw
