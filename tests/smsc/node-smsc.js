// An SMSC on node-smpp (npm smpp, the version in package.json): the SMSC Loa did not
// write, for tests/providers/test_smpp_node.py. It takes a bind from SYSTEM_ID/PASSWORD
// (others: ESME_RBINDFAIL), answers submit_sm with hex ids and, when a receipt is asked
// (registered_delivery & 1), sends one: deliver_sm with the receipt bit, TLVs
// receipted_message_id and message_state, and the receipt text.
// It prints "listening on smpp://127.0.0.1:PORT", then one JSON line per event, as
// node-smpp decoded it (so the test compares what Loa sent with what another SMPP
// implementation read): bind, submit_sm, deliver_sm_resp, unbind.
// env: PORT (0: any free port), SYSTEM_ID (loa), PASSWORD (secret).
'use strict';
const smpp = require('smpp');

const PORT = +(process.env.PORT || 0);
const SYSTEM_ID = process.env.SYSTEM_ID || 'loa';
const PASSWORD = process.env.PASSWORD || 'secret';
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const hex = (buffer) => Buffer.from(buffer).toString('hex');
let nextId = 0x5A0000;

const server = smpp.createServer({ debug: false }, (session) => {
  session.on('error', () => {});
  const bind = (pdu) => {
    const ok = pdu.system_id === SYSTEM_ID && pdu.password === PASSWORD;
    say({ event: 'bind', command: pdu.command, system_id: pdu.system_id, ok });
    session.send(pdu.response(ok ? { system_id: 'NODESMSC' } : { command_status: smpp.ESME_RBINDFAIL }));
    if (!ok) session.close();
  };
  ['bind_transceiver', 'bind_transmitter', 'bind_receiver'].forEach((c) => session.on(c, bind));
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    say({ event: 'unbind' });
    session.send(pdu.response());
    session.close();
  });
  session.on('submit_sm', (pdu) => {
    const id = (nextId++).toString(16).toUpperCase();
    const message = pdu.short_message || {};
    const payload = pdu.message_payload || {};
    say({
      event: 'submit_sm', id, sequence: pdu.sequence_number,
      esm_class: pdu.esm_class, data_coding: pdu.data_coding,
      source: [pdu.source_addr_ton, pdu.source_addr_npi, pdu.source_addr],
      destination: [pdu.dest_addr_ton, pdu.dest_addr_npi, pdu.destination_addr],
      udh: (message.udh || []).map(hex), text: message.message,
      sar: [pdu.sar_msg_ref_num, pdu.sar_total_segments, pdu.sar_segment_seqnum],
      payload: payload.message, registered_delivery: pdu.registered_delivery,
    });
    session.send(pdu.response({ message_id: id }));
    if (pdu.registered_delivery & 1) {
      session.deliver_sm({
        source_addr_ton: pdu.dest_addr_ton, source_addr_npi: pdu.dest_addr_npi,
        source_addr: pdu.destination_addr, destination_addr: pdu.source_addr,
        esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT, receipted_message_id: id, message_state: 2,
        short_message: `id:${id} sub:001 dlvrd:001 submit date:2008201030 done date:2008201031 stat:DELIVRD err:000 text:`,
      }, (resp) => say({ event: 'deliver_sm_resp', id, status: resp.command_status }));
    }
  });
});
server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`listening on smpp://127.0.0.1:${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
