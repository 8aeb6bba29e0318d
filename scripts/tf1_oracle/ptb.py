"""TF 1.15 oracle for the PTB app: the reader and queue producer, the official ptb_word_lm graph (basic and block
cells) and Andy Thomas's lstm_tutorial.py graph, written for TF 1.15 from the behaviour legacy_lstm/ptb.py and
legacy_lstm/data/ptb.py document, at tiny sizes.

Cases (folders in tests/tf1_oracle/):

    ptb_reader          a tiny three-file corpus (written into the case folder) read as reader.py does: the vocabulary
                        (train only, sorted by (-count, word)), the id lists, and the first batches of ptb_producer
                        (range_input_producer + strided_slice under queue runners) for three (batch, steps) choices,
                        past the end of the first epoch (wrap-around).
    ptb_official_basic  ptb_word_lm with rnn_mode basic (BasicLSTMCell) / block (LSTMBlockCell): Train, Valid and Test
    ptb_official_block  models in one "Model" variable scope; two epochs of two producer steps each (the learning rate
                        assigned at each epoch start, decayed for the second), the valid perplexity after each
                        epoch, the test perplexity (batch 1, 1 step) at the end.
    ptb_thomas          lstm_tutorial.py: one LSTMCell object in both layers (tied weights), the init_state
                        placeholder fed back, the same two epochs; per-step cost and accuracy.

Run with a Python 3.7 + TF 1.15.5 interpreter (tests/tf1_oracle/README.md): python scripts/tf1_oracle/ptb.py
(deterministic: fixed corpus, graph seed, producer order)
"""

import collections
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SEED = 2017
# The model cases' training data: the first TRAIN_IDS ids of the reader's train file: 2 windows per epoch (official:
# batch 3 x 5 steps; Thomas: batch 2 x 20 steps), so the 2 epochs of 2 steps are whole producer epochs (the queue
# wraps between them).
TRAIN_IDS = 40
THOMAS_TRAIN_IDS = 82
EPOCHS = 2

# ---------------------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------------------
WORDS = ["the", "a", "market", "stock", "N", "<unk>", "of", "to", "in", "and", "traders", "prices", "rose", "fell",
         "$", "'s", "said", "on", "for", "is", "bank", "rates", "bonds", "caf\u00e9", "yen", "dollar", "shares",
         "investors", "trading", "index", "week", "year"]


def _lines(rng, n_lines, vocab):
    """PTB-style lines (" w1 w2 ... wn \\n"), Zipf-like word frequencies so counts tie and ties sort by word."""
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    lines = []
    for _ in range(n_lines):
        n = int(rng.randint(3, 12))
        lines.append(" " + " ".join(vocab[int(k)] for k in rng.choice(len(vocab), size=n, p=p)) + " \n")
    return lines


def write_corpus(folder):
    """ptb.train.txt (~300 words), ptb.valid.txt, ptb.test.txt in ``folder``; returns their paths.

    The quirks the reader must keep: a line without the trailing space (its last word fuses with <eos>), a tab,
    double spaces, a CRLF line end, a non-ASCII word, and words in valid/test that train never has (dropped)."""
    rng = np.random.RandomState(SEED)
    train = _lines(rng, 40, WORDS)
    train[3] = " the market rose\n"          # "rose<eos>": newline replaced with no space added
    train[7] = " stock\tprices  fell \r\n"   # tab, double space, CRLF ("\r" is whitespace for split)
    valid = _lines(rng, 10, WORDS) + [" the zebra said \n"]   # "zebra" is not in train: dropped
    test = _lines(rng, 6, WORDS) + [" unseen words here \n"]
    paths = []
    for name, lines in (("train", train), ("valid", valid), ("test", test)):
        path = os.path.join(folder, "ptb.%s.txt" % name)
        with open(path, "wb") as f:
            f.write("".join(lines).encode("utf-8"))
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------------------
# reader.py (TF 1.x)
# ---------------------------------------------------------------------------------------------------------
def _read_words(filename):
    with tf.gfile.GFile(filename, "rb") as f:
        return f.read().decode("utf-8").replace("\n", "<eos>").split()


def _build_vocab(filename):
    counter = collections.Counter(_read_words(filename))
    count_pairs = sorted(counter.items(), key=lambda x: (-x[1], x[0]))
    words, _ = list(zip(*count_pairs))
    return dict(zip(words, range(len(words))))


def _file_to_word_ids(filename, word_to_id):
    return [word_to_id[word] for word in _read_words(filename) if word in word_to_id]


def ptb_raw_data(train_path, valid_path, test_path):
    word_to_id = _build_vocab(train_path)
    return (_file_to_word_ids(train_path, word_to_id), _file_to_word_ids(valid_path, word_to_id),
            _file_to_word_ids(test_path, word_to_id), word_to_id)


def ptb_producer(raw_data, batch_size, num_steps, name=None):
    with tf.name_scope(name, "PTBProducer", [raw_data, batch_size, num_steps]):
        raw_data = tf.convert_to_tensor(raw_data, name="raw_data", dtype=tf.int32)
        data_len = tf.size(raw_data)
        batch_len = data_len // batch_size
        data = tf.reshape(raw_data[0: batch_size * batch_len], [batch_size, batch_len])
        epoch_size = (batch_len - 1) // num_steps
        assertion = tf.assert_positive(epoch_size, message="epoch_size == 0, decrease batch_size or num_steps")
        with tf.control_dependencies([assertion]):
            epoch_size = tf.identity(epoch_size, name="epoch_size")
        i = tf.train.range_input_producer(epoch_size, shuffle=False).dequeue()
        x = tf.strided_slice(data, [0, i * num_steps], [batch_size, (i + 1) * num_steps])
        x.set_shape([batch_size, num_steps])
        y = tf.strided_slice(data, [0, i * num_steps + 1], [batch_size, (i + 1) * num_steps + 1])
        y.set_shape([batch_size, num_steps])
        return x, y


class Queues(object):
    """Queue runners under a Coordinator, stopped and joined on exit (the Supervisor did this in ptb_word_lm)."""

    def __init__(self, sess):
        self.sess = sess

    def __enter__(self):
        self.coord = tf.train.Coordinator()
        self.threads = tf.train.start_queue_runners(sess=self.sess, coord=self.coord)
        return self.coord

    def __exit__(self, *exc):
        self.coord.request_stop()
        self.coord.join(self.threads)
        return False


# (3, 8): batch_len 104 is a multiple of num_steps, where epoch_size's "- 1" matters (12 windows, not 13)
PRODUCER_CHOICES = ((3, 5), (4, 7), (2, 20), (3, 8))


def make_reader():
    folder = common.case_dir("ptb_reader")
    paths = write_corpus(folder)
    train, valid, test, word_to_id = ptb_raw_data(*paths)
    vocab = sorted(word_to_id, key=word_to_id.get)
    arrays = {"vocab": np.array(vocab), "train_ids": np.array(train, np.int32),
              "valid_ids": np.array(valid, np.int32), "test_ids": np.array(test, np.int32),
              "train_words": np.array(_read_words(paths[0]))}
    described = {}
    for batch_size, num_steps in PRODUCER_CHOICES:
        epoch_size = ((len(train) // batch_size) - 1) // num_steps
        n = epoch_size + 3  # past the end of the first epoch: the queue cycles 0..epoch_size-1 again
        graph = tf.Graph()
        with graph.as_default():
            x, y = ptb_producer(train, batch_size, num_steps)
            with tf.Session(graph=graph) as sess, Queues(sess):
                xs, ys = zip(*[sess.run([x, y]) for _ in range(n)])
        key = "b%d_s%d" % (batch_size, num_steps)
        arrays["x_" + key] = np.stack(xs)
        arrays["y_" + key] = np.stack(ys)
        arrays["epoch_size_" + key] = np.int32(epoch_size)
        described[key] = {"batch_size": batch_size, "num_steps": num_steps, "epoch_size": epoch_size, "batches": n}
    common.write_case(folder, arrays, {
        "what": "reader.py on a tiny corpus (ptb.{train,valid,test}.txt in this folder) and ptb_producer's first "
                "epoch_size + 3 (x, y) batches for each (batch_size, num_steps), queue runners started",
        "producer": described,
        "array_doc": {"vocab": "the words in id order", "train_words": "_read_words of ptb.train.txt",
                      "{train,valid,test}_ids": "_file_to_word_ids of each file",
                      "x_bB_sS / y_bB_sS": "[batches, B, S] inputs / targets, in dequeue order",
                      "epoch_size_bB_sS": "((len(train) // B) - 1) // S"}})
    return train, valid, test, word_to_id


# ---------------------------------------------------------------------------------------------------------
# ptb_word_lm.py (rnn_mode version), the parts that build and train the graph
# ---------------------------------------------------------------------------------------------------------
class OfficialConfig(object):
    init_scale = 0.1
    learning_rate = 1.0
    max_grad_norm = 1.4  # the tiny model's gradient norms (recorded as global_norm) are 1.25-1.55: some steps clip
    num_layers = 2
    num_steps = 5
    hidden_size = 8
    max_epoch = 1
    max_max_epoch = EPOCHS
    keep_prob = 1.0
    lr_decay = 0.5
    batch_size = 3
    vocab_size = None
    rnn_mode = "block"


class PTBInput(object):
    def __init__(self, config, data, name=None):
        self.batch_size = batch_size = config.batch_size
        self.num_steps = num_steps = config.num_steps
        self.epoch_size = ((len(data) // batch_size) - 1) // num_steps
        self.input_data, self.targets = ptb_producer(data, batch_size, num_steps, name=name)


class PTBModel(object):
    def __init__(self, is_training, config, input_):
        self._is_training = is_training
        self._input = input_
        self.batch_size = input_.batch_size
        self.num_steps = input_.num_steps
        size = config.hidden_size
        vocab_size = config.vocab_size
        with tf.device("/cpu:0"):
            embedding = tf.get_variable("embedding", [vocab_size, size], dtype=tf.float32)
            inputs = tf.nn.embedding_lookup(embedding, input_.input_data)
        if is_training and config.keep_prob < 1:
            inputs = tf.nn.dropout(inputs, config.keep_prob)
        output, state = self._build_rnn_graph_lstm(inputs, config, is_training)
        softmax_w = tf.get_variable("softmax_w", [size, vocab_size], dtype=tf.float32)
        softmax_b = tf.get_variable("softmax_b", [vocab_size], dtype=tf.float32)
        logits = tf.nn.xw_plus_b(output, softmax_w, softmax_b)
        logits = tf.reshape(logits, [self.batch_size, self.num_steps, vocab_size])
        loss = tf.contrib.seq2seq.sequence_loss(logits, input_.targets,
                                                tf.ones([self.batch_size, self.num_steps], dtype=tf.float32),
                                                average_across_timesteps=False, average_across_batch=True)
        self.cost = tf.reduce_sum(loss)
        self.final_state = state
        if not is_training:
            return
        self.lr = tf.Variable(0.0, trainable=False)
        tvars = tf.trainable_variables()
        grads, self.global_norm = tf.clip_by_global_norm(tf.gradients(self.cost, tvars), config.max_grad_norm)
        optimizer = tf.train.GradientDescentOptimizer(self.lr)
        self.train_op = optimizer.apply_gradients(zip(grads, tvars),
                                                  global_step=tf.train.get_or_create_global_step())
        self.new_lr = tf.placeholder(tf.float32, shape=[], name="new_learning_rate")
        self.lr_update = tf.assign(self.lr, self.new_lr)

    def _get_lstm_cell(self, config, is_training):
        if config.rnn_mode == "basic":
            return tf.contrib.rnn.BasicLSTMCell(config.hidden_size, forget_bias=0.0, state_is_tuple=True,
                                                reuse=not is_training)
        if config.rnn_mode == "block":
            return tf.contrib.rnn.LSTMBlockCell(config.hidden_size, forget_bias=0.0)
        raise ValueError("rnn_mode %s not supported" % config.rnn_mode)

    def _build_rnn_graph_lstm(self, inputs, config, is_training):
        def make_cell():
            cell = self._get_lstm_cell(config, is_training)
            if is_training and config.keep_prob < 1:
                cell = tf.contrib.rnn.DropoutWrapper(cell, output_keep_prob=config.keep_prob)
            return cell
        cell = tf.contrib.rnn.MultiRNNCell([make_cell() for _ in range(config.num_layers)], state_is_tuple=True)
        self.initial_state = cell.zero_state(config.batch_size, tf.float32)
        state = self.initial_state
        outputs = []
        with tf.variable_scope("RNN"):
            for time_step in range(self.num_steps):
                if time_step > 0:
                    tf.get_variable_scope().reuse_variables()
                cell_output, state = cell(inputs[:, time_step, :], state)
                outputs.append(cell_output)
        output = tf.reshape(tf.concat(outputs, 1), [-1, config.hidden_size])
        return output, state

    def assign_lr(self, session, lr_value):
        session.run(self.lr_update, feed_dict={self.new_lr: lr_value})


def run_epoch(session, model, eval_op=None, record=None):
    """ptb_word_lm's run_epoch; ``record`` (a list) gets each step's (cost, flat final state, extras)."""
    costs = 0.0
    iters = 0
    state = session.run(model.initial_state)
    fetches = {"cost": model.cost, "final_state": model.final_state}
    if eval_op is not None:
        fetches["eval_op"] = eval_op
        fetches["global_norm"] = model.global_norm
    for _ in range(model._input.epoch_size):
        feed_dict = {}
        for i, (c, h) in enumerate(model.initial_state):
            feed_dict[c] = state[i].c
            feed_dict[h] = state[i].h
        vals = session.run(fetches, feed_dict)
        cost = vals["cost"]
        state = vals["final_state"]
        costs += cost
        iters += model._input.num_steps
        if record is not None:
            record.append((cost, np.stack([np.stack([s.c, s.h]) for s in state]), vals.get("global_norm")))
    return np.exp(costs / iters)


def make_official(rnn_mode, data):
    train_all, valid, test, word_to_id = data
    train = train_all[:TRAIN_IDS]
    config = OfficialConfig()
    config.rnn_mode = rnn_mode
    config.vocab_size = len(word_to_id)
    eval_config = OfficialConfig()
    eval_config.rnn_mode = rnn_mode
    eval_config.vocab_size = len(word_to_id)
    eval_config.batch_size = 1
    eval_config.num_steps = 1
    folder = common.case_dir("ptb_official_" + rnn_mode)
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(SEED)
        initializer = tf.random_uniform_initializer(-config.init_scale, config.init_scale)
        with tf.name_scope("Train"):
            train_input = PTBInput(config=config, data=train, name="TrainInput")
            with tf.variable_scope("Model", reuse=None, initializer=initializer):
                m = PTBModel(is_training=True, config=config, input_=train_input)
        with tf.name_scope("Valid"):
            valid_input = PTBInput(config=config, data=valid, name="ValidInput")
            with tf.variable_scope("Model", reuse=True, initializer=initializer):
                mvalid = PTBModel(is_training=False, config=config, input_=valid_input)
        with tf.name_scope("Test"):
            test_input = PTBInput(config=eval_config, data=test, name="TestInput")
            with tf.variable_scope("Model", reuse=True, initializer=initializer):
                mtest = PTBModel(is_training=False, config=eval_config, input_=test_input)
        names = common.variable_names()
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            common.save(session, folder, common.INIT)
            record, lrs, valid_ppl, train_ppl = [], [], [], []
            with Queues(session):
                for i in range(config.max_max_epoch):
                    lr_decay = config.lr_decay ** max(i + 1 - config.max_epoch, 0.0)
                    m.assign_lr(session, config.learning_rate * lr_decay)
                    lrs.append(session.run(m.lr))
                    train_ppl.append(run_epoch(session, m, eval_op=m.train_op, record=record))
                    valid_ppl.append(run_epoch(session, mvalid))
                test_ppl = run_epoch(session, mtest)
            common.save(session, folder, common.TRAINED)
            global_step = session.run(tf.train.get_global_step())
    costs, states, norms = zip(*record)
    common.write_case(folder, {
        "train_ids": np.array(train, np.int32), "valid_ids": np.array(valid, np.int32),
        "test_ids": np.array(test, np.int32), "costs": np.array(costs, np.float32), "states": np.stack(states),
        "global_norm": np.array(norms, np.float32), "learning_rates": np.array(lrs, np.float32),
        "train_perplexity": np.array(train_ppl), "valid_perplexity": np.array(valid_ppl),
        "test_perplexity": np.float64(test_ppl), "global_step": np.int64(global_step)}, {
        "what": "ptb_word_lm (rnn_mode %s): Train/Valid/Test models in variable_scope Model; %d epochs of "
                "run_epoch(Train, train_op) (lr = learning_rate * lr_decay ** max(i + 1 - max_epoch, 0) assigned "
                "first) then run_epoch(Valid); run_epoch(Test, batch 1 x 1 step) at the end" % (rnn_mode, EPOCHS),
        "config": {k: getattr(config, k) for k in dir(config) if not k.startswith("_")},
        "steps": len(costs), "variables": names,
        "array_doc": {"train_ids": "the first %d train ids of the ptb_reader case (2 windows per epoch)" % TRAIN_IDS,
                      "costs": "per training step, before its update", "states": "[step, layer, c/h, batch, hidden] "
                      "final state of each training step", "global_norm": "gradient global norm per step (not a "
                      "port output: shows the clipping at max_grad_norm was active)",
                      "learning_rates": "the lr variable after each epoch's assign", "train_perplexity": "per epoch",
                      "valid_perplexity": "after each epoch", "test_perplexity": "at the end",
                      "global_step": "after training"}})


# ---------------------------------------------------------------------------------------------------------
# lstm_tutorial.py (Thomas)
# ---------------------------------------------------------------------------------------------------------
def batch_producer(raw_data, batch_size, num_steps):
    raw_data = tf.convert_to_tensor(raw_data, name="raw_data", dtype=tf.int32)
    data_len = tf.size(raw_data)
    batch_len = data_len // batch_size
    data = tf.reshape(raw_data[0: batch_size * batch_len], [batch_size, batch_len])
    epoch_size = (batch_len - 1) // num_steps
    i = tf.train.range_input_producer(epoch_size, shuffle=False).dequeue()
    x = data[:, i * num_steps:(i + 1) * num_steps]
    x.set_shape([batch_size, num_steps])
    y = data[:, i * num_steps + 1: (i + 1) * num_steps + 1]
    y.set_shape([batch_size, num_steps])
    return x, y


class Input(object):
    def __init__(self, batch_size, num_steps, data):
        self.batch_size = batch_size
        self.num_steps = num_steps
        self.epoch_size = ((len(data) // batch_size) - 1) // num_steps
        self.input_data, self.targets = batch_producer(data, batch_size, num_steps)


class Model(object):
    def __init__(self, input, is_training, hidden_size, vocab_size, num_layers, dropout=0.5, init_scale=0.05):
        self.is_training = is_training
        self.input_obj = input
        self.batch_size = input.batch_size
        self.num_steps = input.num_steps
        self.hidden_size = hidden_size
        with tf.device("/cpu:0"):
            embedding = tf.Variable(tf.random_uniform([vocab_size, self.hidden_size], -init_scale, init_scale))
            inputs = tf.nn.embedding_lookup(embedding, self.input_obj.input_data)
        if is_training and dropout < 1:
            inputs = tf.nn.dropout(inputs, dropout)
        self.init_state = tf.placeholder(tf.float32, [num_layers, 2, self.batch_size, self.hidden_size])
        state_per_layer_list = tf.unstack(self.init_state, axis=0)
        rnn_tuple_state = tuple([tf.contrib.rnn.LSTMStateTuple(state_per_layer_list[idx][0],
                                                               state_per_layer_list[idx][1])
                                 for idx in range(num_layers)])
        cell = tf.contrib.rnn.LSTMCell(hidden_size, forget_bias=1.0)
        if is_training and dropout < 1:
            cell = tf.contrib.rnn.DropoutWrapper(cell, output_keep_prob=dropout)
        if num_layers > 1:
            cell = tf.contrib.rnn.MultiRNNCell([cell for _ in range(num_layers)], state_is_tuple=True)
        output, self.state = tf.nn.dynamic_rnn(cell, inputs, dtype=tf.float32, initial_state=rnn_tuple_state)
        output = tf.reshape(output, [-1, hidden_size])
        softmax_w = tf.Variable(tf.random_uniform([self.hidden_size, vocab_size], -init_scale, init_scale))
        softmax_b = tf.Variable(tf.random_uniform([vocab_size], -init_scale, init_scale))
        logits = tf.nn.xw_plus_b(output, softmax_w, softmax_b)
        logits = tf.reshape(logits, [self.batch_size, self.num_steps, vocab_size])
        loss = tf.contrib.seq2seq.sequence_loss(logits, self.input_obj.targets,
                                                tf.ones([self.batch_size, self.num_steps], dtype=tf.float32),
                                                average_across_timesteps=False, average_across_batch=True)
        self.cost = tf.reduce_sum(loss)
        self.softmax_out = tf.nn.softmax(tf.reshape(logits, [-1, vocab_size]))
        self.predict = tf.cast(tf.argmax(self.softmax_out, axis=1), tf.int32)
        correct_prediction = tf.equal(self.predict, tf.reshape(self.input_obj.targets, [-1]))
        self.accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
        if not is_training:
            return
        self.learning_rate = tf.Variable(0.0, trainable=False)
        tvars = tf.trainable_variables()
        grads, self.global_norm = tf.clip_by_global_norm(tf.gradients(self.cost, tvars), 5)
        optimizer = tf.train.GradientDescentOptimizer(self.learning_rate)
        self.train_op = optimizer.apply_gradients(zip(grads, tvars),
                                                  global_step=tf.contrib.framework.get_or_create_global_step())
        self.new_lr = tf.placeholder(tf.float32, shape=[])
        self.lr_update = tf.assign(self.learning_rate, self.new_lr)

    def assign_lr(self, session, lr_value):
        session.run(self.lr_update, feed_dict={self.new_lr: lr_value})


# 20 steps (batch 2) so that the cost, a sum over the steps, has gradient norms around the original's hard-coded
# clip of 5: some steps are clipped, some not (global_norm in case.npz).
THOMAS = {"batch_size": 2, "num_steps": 20, "hidden_size": 8, "num_layers": 2, "dropout": 1.0, "init_scale": 0.05,
          "learning_rate": 1.0, "max_lr_epoch": 1, "lr_decay": 0.5, "num_epochs": EPOCHS, "max_grad_norm": 5}


def make_thomas(data):
    train_all, _, _, word_to_id = data
    train = train_all[:THOMAS_TRAIN_IDS]
    c = dict(THOMAS, vocab_size=len(word_to_id))
    folder = common.case_dir("ptb_thomas")
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(SEED)
        training_input = Input(batch_size=c["batch_size"], num_steps=c["num_steps"], data=train)
        m = Model(training_input, is_training=True, hidden_size=c["hidden_size"], vocab_size=c["vocab_size"],
                  num_layers=c["num_layers"], dropout=c["dropout"], init_scale=c["init_scale"])
        init_op = tf.global_variables_initializer()
        names = common.variable_names()
        with tf.Session(graph=graph) as sess:
            sess.run(init_op)
            common.save(sess, folder, common.INIT)
            costs, accs, states, norms, lrs = [], [], [], [], []
            with Queues(sess):
                for epoch in range(c["num_epochs"]):
                    new_lr_decay = c["lr_decay"] ** max(epoch + 1 - c["max_lr_epoch"], 0.0)
                    m.assign_lr(sess, c["learning_rate"] * new_lr_decay)
                    lrs.append(sess.run(m.learning_rate))
                    current_state = np.zeros((c["num_layers"], 2, c["batch_size"], c["hidden_size"]))
                    for _ in range(training_input.epoch_size):
                        # every step as the original's printed steps: cost, train_op, state and accuracy in one run
                        cost, _, current_state, acc, norm = sess.run(
                            [m.cost, m.train_op, m.state, m.accuracy, m.global_norm],
                            feed_dict={m.init_state: current_state})
                        current_state = np.array(current_state)  # what feeding the nested tuple back does
                        costs.append(cost)
                        accs.append(acc)
                        states.append(current_state)
                        norms.append(norm)
            common.save(sess, folder, common.TRAINED)
            global_step = sess.run(tf.train.get_global_step())
    common.write_case(folder, {
        "train_ids": np.array(train, np.int32), "costs": np.array(costs, np.float32),
        "accuracy": np.array(accs, np.float32), "states": np.stack(states).astype(np.float32),
        "global_norm": np.array(norms, np.float32), "learning_rates": np.array(lrs, np.float32),
        "global_step": np.int64(global_step)}, {
        "what": "lstm_tutorial.py Model (one LSTMCell object in both layers: tied weights; dropout 1.0 = off) "
                "trained %d epochs from a zero state carried through init_state; lr assigned at each epoch start"
                % EPOCHS,
        "config": c, "steps": len(costs), "variables": names,
        "array_doc": {"train_ids": "the first %d train ids of the ptb_reader case" % THOMAS_TRAIN_IDS,
                      "costs": "per step (before its update)", "accuracy": "per step, fetched in the training run",
                      "states": "[step, layer, c/h, batch, hidden] the state fed to the next step",
                      "global_norm": "gradient global norm per step (not a port output)",
                      "learning_rates": "the lr variable after each epoch's assign",
                      "global_step": "after training"}})


def make():
    data = make_reader()
    make_official("basic", data)
    make_official("block", data)
    make_thomas(data)


if __name__ == "__main__":
    tf.logging.set_verbosity(tf.logging.ERROR)
    make()
